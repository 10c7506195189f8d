// The latest complete stack in three dimensions: orthogonal views (xy at a chosen z, xz and yz
// through the crosshair, physical aspect from the voxel size) and a rendering in WebGL2 (the volume
// as an R16UI 3-D texture, a ray marched per pixel: maximum intensity or alpha compositing; drag to
// rotate, wheel to zoom), both through the 2-D view's LUT and contrast window. Fed by the SPVL
// messages the hub sends after each stack (src/server/volume-protocol.ts).
import { $ } from './dom.js';

const VERT = `#version 300 es
in vec2 p; out vec2 uv;
void main() { uv = p; gl_Position = vec4(p, 0.0, 1.0); }`;

// Orthographic rays along the rotated view axis through the box (half-sizes `hs`, in µm scaled to
// fit; `zoom` magnifies), two steps per voxel crossed; the voxel under each step is fetched exactly
// (no interpolation).
// mode 0: maximum intensity. mode 1: front-to-back alpha compositing, each voxel's opacity g² x 0.8
// at window position g, corrected for the steps per voxel so that a bead is as opaque from any side.
// Both colour through the 2-D view's LUT (a 256 x 1 texture); a saturated voxel is red.
const FRAG = `#version 300 es
precision highp float; precision highp usampler3D;
uniform usampler3D vol; uniform sampler2D lut; uniform vec3 hs; uniform mat3 rot; uniform vec2 win; uniform uint sat;
uniform ivec3 size; uniform int mode; uniform float zoom;
in vec2 uv; out vec4 color;
vec3 shade(float g) { return texelFetch(lut, ivec2(int(g * 255.0 + 0.5), 0), 0).rgb; }
void main() {
  vec3 o = rot * vec3(uv / zoom, -2.0), d = rot * vec3(0.0, 0.0, 1.0);
  vec3 t0 = (-hs - o) / d, t1 = (hs - o) / d;
  vec3 tmin = min(t0, t1), tmax = max(t0, t1);
  float a = max(max(tmin.x, tmin.y), tmin.z), b = min(min(tmax.x, tmax.y), tmax.z);
  if (b <= a) { color = vec4(0.0, 0.0, 0.0, 1.0); return; }
  // Two samples per voxel crossed (at most 1024): a thin stack seen face on needs few.
  vec3 cross = abs(2.0 * hs / vec3(size) / d);
  float vlen = min(min(cross.x, cross.y), cross.z);
  int n = min(1024, int(ceil(2.0 * (b - a) / vlen)));
  float dt = (b - a) / float(n);
  float perStep = dt / vlen;
  uint m = 0u;
  vec3 c = vec3(0.0);
  float A = 0.0;
  for (int i = 0; i < n; i++) {
    vec3 q = (o + d * (a + (float(i) + 0.5) * dt) + hs) / (2.0 * hs);
    ivec3 v = clamp(ivec3(q * vec3(size)), ivec3(0), size - 1);
    uint s = texelFetch(vol, v, 0).r;
    if (mode == 0) { m = max(m, s); continue; }
    if (s >= sat) { c += (1.0 - A) * vec3(1.0, 0.0, 0.0); A = 1.0; break; }
    float g = clamp((float(s) - win.x) / (win.y - win.x), 0.0, 1.0);
    float ai = 1.0 - pow(1.0 - 0.8 * g * g, perStep);
    c += (1.0 - A) * ai * shade(g);
    A += (1.0 - A) * ai;
    if (A > 0.995) break;
  }
  if (mode == 1) { color = vec4(c, 1.0); return; }
  if (m >= sat) { color = vec4(1.0, 0.0, 0.0, 1.0); return; }
  color = vec4(shade(clamp((float(m) - win.x) / (win.y - win.x), 0.0, 1.0)), 1.0);
}`;

/** The grey LUT: until the page sets one. */
const GREY = Uint8ClampedArray.from({ length: 768 }, (_, i) => Math.floor(i / 3));

export class VolumeView {
  constructor() {
    this.vol = null;
    this.mode = 'ortho';
    this.cursor = { x: 0, y: 0, z: 0 };
    this.yaw = 0;
    this.pitch = 0;
    this.gl = null;
    this.lo = 0;
    this.hi = 1;
    this.saturation = 65535;
    this.render = 'mip';
    this.zoom = 1;
    this.lut = GREY;
    $('ortho-cross').addEventListener('change', () => this.draw());
    $('ortho-z').addEventListener('input', (e) => {
      this.cursor.z = Number(e.target.value);
      this.draw();
    });
    for (const [id, axes] of [
      ['ortho-xy', ['x', 'y']],
      ['ortho-xz', ['x', 'z']],
      ['ortho-yz', ['z', 'y']],
    ])
      $(id).addEventListener('click', (e) => {
        if (!this.vol) return;
        const c = e.target;
        const r = c.getBoundingClientRect();
        const dims = { x: this.vol.width, y: this.vol.height, z: this.vol.depth };
        this.cursor[axes[0]] = Math.min(dims[axes[0]] - 1, Math.floor(((e.clientX - r.left) / r.width) * dims[axes[0]]));
        this.cursor[axes[1]] = Math.min(dims[axes[1]] - 1, Math.floor(((e.clientY - r.top) / r.height) * dims[axes[1]]));
        $('ortho-z').value = String(this.cursor.z);
        this.draw();
      });
    const c3 = $('vol3d');
    let drag = null;
    c3.addEventListener('mousedown', (e) => {
      drag = { x: e.clientX, y: e.clientY, yaw: this.yaw, pitch: this.pitch };
    });
    window.addEventListener('mouseup', () => {
      drag = null;
    });
    c3.addEventListener(
      'wheel',
      (e) => {
        e.preventDefault();
        this.zoomTo(this.zoom * Math.exp(-e.deltaY * 0.001));
      },
      { passive: false },
    );
    window.addEventListener('mousemove', (e) => {
      if (!drag) return;
      this.yaw = drag.yaw + (e.clientX - drag.x) * 0.01;
      this.pitch = Math.max(-1.5, Math.min(1.5, drag.pitch + (e.clientY - drag.y) * 0.01));
      this.draw();
    });
  }

  setMode(mode) {
    this.mode = mode;
    $('ortho').hidden = mode !== 'ortho';
    $('vol3d').hidden = mode !== '3d';
    $('render3d-l').hidden = mode !== '3d';
    this.draw();
  }

  /** Sets the rotation (radians) of the 3-D view; for deep links and tests. */
  rotate(yaw, pitch = 0) {
    this.yaw = yaw;
    this.pitch = pitch;
    this.draw();
  }

  /** Magnification of the 3-D view (1: the whole box fits), for the wheel, deep links and tests. */
  zoomTo(z) {
    this.zoom = Math.max(0.5, Math.min(8, z));
    this.draw();
  }

  /** 'mip' (maximum intensity) or 'alpha' (compositing) in the 3-D view. */
  setRender(r) {
    this.render = r === 'alpha' ? 'alpha' : 'mip';
    this.draw();
  }

  /** The 2-D view's LUT: 256 RGB triplets. */
  setLut(lut) {
    this.lut = lut;
    this.lutUploaded = false;
    this.draw();
  }

  /** A decoded SPVL message, and the contrast window (null: from the volume's own percentiles). */
  show(v, window, saturation) {
    const first = !this.vol || this.vol.depth !== v.depth || this.vol.width !== v.width;
    this.vol = v;
    this.saturation = saturation;
    [this.lo, this.hi] = window ?? percentiles(v.data);
    if (first) {
      this.cursor = { x: v.width >> 1, y: v.height >> 1, z: v.depth >> 1 };
      $('ortho-z').max = String(v.depth - 1);
      $('ortho-z').value = String(this.cursor.z);
    }
    this.uploaded = false;
    $('volinfo').textContent =
      `stack t=${v.t} · ${v.width}×${v.height}×${v.depth} voxels of ${v.voxelUm.map((s) => s.toFixed(2)).join(' × ')} µm (binned ${v.step}×${v.step}) · window ${this.lo.toFixed(0)}–${this.hi.toFixed(0)} ADU`;
    this.draw();
  }

  draw() {
    if (!this.vol) return;
    if (this.mode === 'ortho') this.drawOrtho();
    else if (this.mode === '3d') this.draw3d();
  }

  drawOrtho() {
    const v = this.vol;
    const { x: cx, y: cy, z: cz } = this.cursor;
    $('ortho-zv').textContent = `${cz} / ${v.depth - 1}`;
    const W = v.width;
    const H = v.height;
    const at = (x, y, z) => v.data[(z * H + y) * W + x];
    // Each view: its pixel grid, and how wide each pixel is on screen (µm): the physical aspect.
    const [ux, uy, uz] = v.voxelUm.map((s) => (s > 0 ? s : 1));
    const scale = 480 / Math.max(W * ux, H * uy);
    this.paint('ortho-xy', W, H, (x, y) => at(x, y, cz), ux * scale, uy * scale, cx, cy);
    this.paint('ortho-xz', W, v.depth, (x, z) => at(x, cy, z), ux * scale, uz * scale, cx, cz);
    this.paint('ortho-yz', v.depth, H, (z, y) => at(cx, y, z), uz * scale, uy * scale, cz, cy);
  }

  paint(id, w, h, get, sx, sy, mx, my) {
    const c = $(id);
    c.width = w;
    c.height = h;
    c.style.width = `${Math.max(1, Math.round(w * sx))}px`;
    c.style.height = `${Math.max(1, Math.round(h * sy))}px`;
    const ctx = c.getContext('2d');
    const img = ctx.createImageData(w, h);
    const k = 255 / Math.max(1, this.hi - this.lo);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const v = get(x, y);
        const i = 4 * (y * w + x);
        const g = 3 * Math.round(Math.max(0, Math.min(255, (v - this.lo) * k)));
        const satd = v >= this.saturation;
        img.data[i] = satd ? 255 : this.lut[g];
        img.data[i + 1] = satd ? 0 : this.lut[g + 1];
        img.data[i + 2] = satd ? 0 : this.lut[g + 2];
        img.data[i + 3] = 255;
      }
    ctx.putImageData(img, 0, 0);
    if (!$('ortho-cross').checked) return;
    // The crosshair: one pixel-wide lines through the other views' planes, drawn beside the data
    // (a translucent colour, so the pixel under it stays readable).
    ctx.fillStyle = 'rgba(0, 200, 255, 0.35)';
    ctx.fillRect(mx, 0, 1, h);
    ctx.fillRect(0, my, w, 1);
  }

  draw3d() {
    const c = $('vol3d');
    const gl = this.gl ?? this.initGl(c);
    if (!gl) return;
    const v = this.vol;
    if (!this.uploaded) {
      gl.bindTexture(gl.TEXTURE_3D, this.tex);
      gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
      gl.texImage3D(gl.TEXTURE_3D, 0, gl.R16UI, v.width, v.height, v.depth, 0, gl.RED_INTEGER, gl.UNSIGNED_SHORT, v.data);
      this.uploaded = true;
    }
    if (!this.lutUploaded) {
      gl.activeTexture(gl.TEXTURE1);
      gl.bindTexture(gl.TEXTURE_2D, this.lutTex);
      gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB8, 256, 1, 0, gl.RGB, gl.UNSIGNED_BYTE, new Uint8Array(this.lut));
      gl.activeTexture(gl.TEXTURE0);
      this.lutUploaded = true;
    }
    // Physical extent, normalised so the largest half-size is 0.8 (the box fits at any rotation).
    const ext = [v.width * v.voxelUm[0], v.height * v.voxelUm[1], v.depth * (v.voxelUm[2] > 0 ? v.voxelUm[2] : v.voxelUm[0])];
    const m = Math.max(...ext);
    const half = ext.map((e) => (0.8 * e) / m);
    const [cy, sy, cp, sp] = [Math.cos(this.yaw), Math.sin(this.yaw), Math.cos(this.pitch), Math.sin(this.pitch)];
    // rot = Ry(yaw) * Rx(pitch), column-major; screen y points down the volume's y (image rows).
    const rot = [cy, 0, -sy, sy * sp, cp, cy * sp, sy * cp, -sp, cy * cp];
    gl.viewport(0, 0, c.width, c.height);
    gl.useProgram(this.prog);
    const u = (n) => gl.getUniformLocation(this.prog, n);
    gl.uniform3f(u('hs'), half[0], -half[1], half[2]);
    gl.uniformMatrix3fv(u('rot'), false, rot);
    gl.uniform2f(u('win'), this.lo, this.hi);
    gl.uniform1ui(u('sat'), this.saturation);
    gl.uniform3i(u('size'), v.width, v.height, v.depth);
    gl.uniform1i(u('vol'), 0);
    gl.uniform1i(u('lut'), 1);
    gl.uniform1i(u('mode'), this.render === 'alpha' ? 1 : 0);
    gl.uniform1f(u('zoom'), this.zoom);
    gl.drawArrays(gl.TRIANGLES, 0, 3);
  }

  initGl(c) {
    const gl = c.getContext('webgl2', { preserveDrawingBuffer: true });
    if (!gl) {
      $('volinfo').textContent = 'this browser has no WebGL2: the 3-D view needs it';
      return null;
    }
    const sh = (type, src) => {
      const s = gl.createShader(type);
      gl.shaderSource(s, src);
      gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
      return s;
    };
    const prog = gl.createProgram();
    gl.attachShader(prog, sh(gl.VERTEX_SHADER, VERT));
    gl.attachShader(prog, sh(gl.FRAGMENT_SHADER, FRAG));
    gl.linkProgram(prog);
    if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(prog));
    const buf = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, buf);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 3, -1, -1, 3]), gl.STATIC_DRAW);
    const loc = gl.getAttribLocation(prog, 'p');
    gl.enableVertexAttribArray(loc);
    gl.vertexAttribPointer(loc, 2, gl.FLOAT, false, 0, 0);
    this.tex = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_3D, this.tex);
    for (const p of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(gl.TEXTURE_3D, p, gl.NEAREST);
    this.lutTex = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, this.lutTex);
    for (const p of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(gl.TEXTURE_2D, p, gl.NEAREST);
    this.lutUploaded = false;
    this.prog = prog;
    this.gl = gl;
    return gl;
  }
}

/** 0.1 % and 99.9 % of the voxels: the contrast window when none was set. */
function percentiles(data) {
  const hist = new Uint32Array(65536);
  for (let i = 0; i < data.length; i++) hist[data[i]]++;
  const pick = (q) => {
    let cum = 0;
    const target = q * data.length;
    for (let v = 0; v < 65536; v++) if ((cum += hist[v]) >= target) return v;
    return 65535;
  };
  const lo = pick(0.001);
  return [lo, Math.max(lo + 1, pick(0.999))];
}
