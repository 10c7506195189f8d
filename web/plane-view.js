// The plane / stack-MIP canvas: a decoded preview painted through a LUT (saturated pixels red when
// asked), fitted to the canvas, zoomed with the wheel about the pointer and panned by dragging.

export class PlaneView {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    this.frame = document.createElement('canvas');
    this.scratch = document.createElement('canvas');
    this.imgW = 0;
    this.imgH = 0;
    this.zoom = 1;
    this.panX = 0;
    this.panY = 0;
    let drag = null;
    canvas.addEventListener(
      'wheel',
      (e) => {
        e.preventDefault();
        const f = e.deltaY < 0 ? 1.2 : 1 / 1.2;
        const r = canvas.getBoundingClientRect();
        const mx = e.clientX - r.left;
        const my = e.clientY - r.top;
        this.panX = mx - (mx - this.panX) * f;
        this.panY = my - (my - this.panY) * f;
        this.zoom *= f;
        this.draw();
      },
      { passive: false },
    );
    canvas.addEventListener('mousedown', (e) => {
      drag = [e.clientX - this.panX, e.clientY - this.panY];
      canvas.style.cursor = 'grabbing';
    });
    window.addEventListener('mouseup', () => {
      drag = null;
      canvas.style.cursor = 'grab';
    });
    window.addEventListener('mousemove', (e) => {
      if (drag) {
        this.panX = e.clientX - drag[0];
        this.panY = e.clientY - drag[1];
        this.draw();
      }
    });
    window.addEventListener('resize', () => this.fit());
  }

  /**
   * Paints a decoded preview (decodePreview's result: 8-bit raw, JPEG or WebP) through `lut`
   * (256 RGB entries); its saturated pixels red when `markSaturated`.
   */
  async show(m, lut, markSaturated) {
    const { format, width: w, height: h } = m;
    let grey;
    if (format === 'raw') {
      grey = m.data;
    } else {
      const bmp = await createImageBitmap(new Blob([m.data], { type: `image/${format}` }));
      this.scratch.width = w;
      this.scratch.height = h;
      const sg = this.scratch.getContext('2d', { willReadFrequently: true });
      sg.drawImage(bmp, 0, 0);
      const d = sg.getImageData(0, 0, w, h).data;
      grey = new Uint8Array(w * h);
      for (let i = 0; i < w * h; i++) grey[i] = d[i * 4];
    }
    const out = new ImageData(w, h);
    const o = out.data;
    for (let i = 0; i < w * h; i++) {
      const v = grey[i] * 3;
      o[i * 4] = lut[v];
      o[i * 4 + 1] = lut[v + 1];
      o[i * 4 + 2] = lut[v + 2];
      o[i * 4 + 3] = 255;
    }
    if (markSaturated) {
      for (let k = 0; k < m.saturated.length; k++) {
        const i = m.saturated[k];
        o[i * 4] = 255;
        o[i * 4 + 1] = 0;
        o[i * 4 + 2] = 0;
      }
    }
    this.frame.width = w;
    this.frame.height = h;
    this.frame.getContext('2d').putImageData(out, 0, 0);
    if (this.imgW !== w || this.imgH !== h) {
      this.imgW = w;
      this.imgH = h;
      this.fit();
    }
    this.draw();
  }

  /** The whole image in the canvas, centred. */
  fit() {
    const c = this.canvas;
    c.width = c.clientWidth;
    c.height = c.clientHeight;
    if (!this.imgW) return;
    this.zoom = Math.min(c.width / this.imgW, c.height / this.imgH);
    this.panX = (c.width - this.imgW * this.zoom) / 2;
    this.panY = (c.height - this.imgH * this.zoom) / 2;
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const g = c.getContext('2d');
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.fillStyle = '#000';
    g.fillRect(0, 0, c.width, c.height);
    g.imageSmoothingEnabled = this.zoom < 2;
    g.setTransform(this.zoom, 0, 0, this.zoom, this.panX, this.panY);
    g.drawImage(this.frame, 0, 0);
  }
}
