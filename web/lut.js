// Colour lookup tables shared by the plane view and the volume views (one definition for both).

/**
 * 256 RGB entries for a LUT name: grey, fire, or the channel's colour from the hello message
 * (`channel_colors`, by the channel part of the stream id "channel/view").
 */
export function lutFor(name, hello, stream) {
  const lut = new Uint8ClampedArray(256 * 3);
  let rgb = [1, 1, 1];
  if (name === 'channel' && hello) {
    const ch = stream ? stream.split('/')[0] : '';
    const hex = hello.channel_colors?.[ch] || 'FFFFFF';
    rgb = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
  }
  for (let i = 0; i < 256; i++) {
    if (name === 'fire') {
      lut[i * 3] = Math.min(255, i * 3);
      lut[i * 3 + 1] = Math.max(0, Math.min(255, (i - 85) * 3));
      lut[i * 3 + 2] = Math.max(0, (i - 170) * 3);
    } else {
      lut[i * 3] = i * rgb[0];
      lut[i * 3 + 1] = i * rgb[1];
      lut[i * 3 + 2] = i * rgb[2];
    }
  }
  return lut;
}
