// Assembles the WebAssembly SIMD kernels (workers/kernels/wasm/*.wat, hand-written text format) into
// dist/workers/kernels/wasm/*.wasm with wabt (a devDependency). Without it (an install that omitted
// dev dependencies) the kernels are not built and the workers use the plain JS kernels (logged).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = path.join(root, 'workers', 'kernels', 'wasm');
const outDir = path.join(root, 'dist', 'workers', 'kernels', 'wasm');
let initWabt;
try {
  initWabt = (await import('wabt')).default;
} catch {
  process.stderr.write('build-wasm: wabt is not installed; the SIMD kernels are not built (the JS kernels run instead)\n');
  process.exit(0);
}
const wabt = await initWabt();
fs.mkdirSync(outDir, { recursive: true });
for (const f of fs.readdirSync(srcDir).filter((n) => n.endsWith('.wat'))) {
  const mod = wabt.parseWat(f, fs.readFileSync(path.join(srcDir, f), 'utf8'), { simd: true, bulk_memory: true });
  mod.validate();
  const { buffer } = mod.toBinary({});
  mod.destroy();
  // write then rename: a worker starting during a rebuild never reads half a module
  const out = path.join(outDir, f.replace(/\.wat$/, '.wasm'));
  fs.writeFileSync(`${out}.tmp`, buffer);
  fs.renameSync(`${out}.tmp`, out);
}
