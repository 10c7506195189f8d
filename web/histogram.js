// The QC histogram panel: bars of the frame's [min, max] range (log counts), the saturation level,
// and the display window. Pure drawing: everything it shows comes in as arguments.

/**
 * @param {HTMLCanvasElement} c
 * @param {{ bins: number[] | null, lo: number | null, hi: number | null, saturation: number, window: [number, number] | null }} h
 */
export function drawHistogram(c, h) {
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  if (!h.bins) return;
  const max = Math.log1p(Math.max(...h.bins));
  const bw = c.width / h.bins.length;
  g.fillStyle = '#9fb3c8';
  h.bins.forEach((v, i) => {
    const bh = (Math.log1p(v) / max) * (c.height - 12);
    g.fillRect(i * bw, c.height - bh, Math.max(1, bw - 0.5), bh);
  });
  const sat = h.saturation;
  const lo = h.lo ?? 0;
  const hi = Math.max(h.hi ?? sat + 1, lo + 1);
  const xOf = (v) => ((v - lo) / (hi - lo)) * c.width;
  g.font = '10px sans-serif';
  g.fillStyle = '#8a96a3';
  // Both labels in the top band the bars never reach (bars use the height below 12 px).
  g.textAlign = 'left';
  g.fillText(String(lo), 2, 10);
  g.textAlign = 'right';
  g.fillText(String(hi - 1), c.width - 2, 10);
  g.textAlign = 'left';
  // The saturation level: a red line where it falls, or an arrow when it is above this frame's range.
  g.strokeStyle = '#ff4040';
  g.fillStyle = '#ff4040';
  if (sat < hi) {
    const x = Math.max(1, xOf(sat));
    g.beginPath();
    g.moveTo(x, 0);
    g.lineTo(x, c.height);
    g.stroke();
    g.fillText(`saturation ${sat}`, Math.max(0, x - 90), 22);
  } else {
    g.fillText(`saturation ${sat} →`, c.width - 110, 22);
  }
  if (h.window) {
    g.strokeStyle = '#e3b341';
    for (const v of h.window) {
      const x = xOf(v);
      if (x < 0 || x > c.width) continue;
      g.beginPath();
      g.moveTo(x, 26);
      g.lineTo(x, c.height);
      g.stroke();
    }
  }
}
