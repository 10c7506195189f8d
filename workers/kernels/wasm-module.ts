/**
 * Loading a WebAssembly SIMD kernel assembled at build time (wasm/NAME.wat -> dist/.../NAME.wasm by
 * scripts/build-wasm.mjs). Where it cannot load, the caller's JS kernel runs and `why` says why.
 */
import fs from 'node:fs';

export interface LoadedKernel<K> {
  kernel: K | null;
  /** Why the kernel cannot run here ('' when it can). */
  why: string;
}

export function loadWasm<K>(name: string): LoadedKernel<K> {
  try {
    // Beside this module in dist/; from the sources (vitest), the built copy in dist/.
    const here = new URL(`./wasm/${name}.wasm`, import.meta.url);
    const built = new URL(`../../dist/workers/kernels/wasm/${name}.wasm`, import.meta.url);
    const bytes = fs.readFileSync(fs.existsSync(here) ? here : built);
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes));
    return { kernel: inst.exports as unknown as K, why: '' };
  } catch (e) {
    // Not built (no wabt at build time) or no WebAssembly SIMD in this runtime.
    return { kernel: null, why: (e as Error).message.split('\n')[0] };
  }
}

/**
 * Bytes of the kernels' histogram: two tables of 65536 u32 (even and odd samples, so that runs of
 * one value do not serialise on one counter), folded into the first.
 */
export const TWO_TABLE_HIST_BYTES = 2 * 65536 * 4;

/** Grows a kernel's memory to at least `bytes` (it never shrinks). */
export function ensureMemory(memory: WebAssembly.Memory, bytes: number): void {
  if (memory.buffer.byteLength < bytes) memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / 65536));
}
