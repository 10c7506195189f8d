/**
 * The completion manifest: when an acquisition ends, `spimstream-manifest.json` is written in the
 * store's root (temp, fdatasync, rename, directory fsync), last of all. HPC workflows start from it:
 * it says the acquisition is complete and lists every file with its size and SHA-256 (shards hashed
 * as they were written; metadata files read back), with the losses by reason, a QC summary per
 * stack, the sample metadata, the spimstream version and the effective configuration.
 * Schema: docs/manifest.schema.json (`manifest_version` changes when a field changes meaning).
 * `qc-report.html` (qc-report.ts) is written just before it, so the manifest lists it too.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type AcquisitionSummary, type EventBus, type PipelineEvents, streamId } from '../pipeline/events.js';
import { writeFileDurableSync } from '../zarr/dir-sync.js';
import { type ReportAlert, renderQcReport } from './qc-report.js';

export const MANIFEST_NAME = 'spimstream-manifest.json';
export const MANIFEST_VERSION = 1;
export const REPORT_NAME = 'qc-report.html';

/** Every finished file of a store (absolute paths): all but the manifest and temporary `.tmp-` files. */
export function storeFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, d.name);
      if (d.isDirectory()) walk(full);
      else if (d.isFile() && d.name !== MANIFEST_NAME && !d.name.includes('.tmp-')) out.push(full);
    }
  };
  walk(root);
  return out;
}

interface StackEntry {
  t: number;
  channel: string;
  view: string;
  planes: number;
  focus_planes: number;
  best_focus_z: number;
  mean_focus: number | null;
  focus_relative: number | null;
  max_saturated_ratio: number;
  mean_signal: number;
  drift_px: [number, number] | null;
  drift_confidence: number | null;
}

interface Current {
  id: number;
  name: string;
  roots: string[];
  started: string;
  geometry: Record<string, unknown>;
  files: Map<string, { bytes: number; sha256: string }>;
  unstored: Record<string, number>;
  stacks: StackEntry[];
  drift: Map<string, { dx: number; dy: number; confidence: number } | null>;
  alerts: ReportAlert[];
}

export class ManifestWriter {
  private cur: Current | null = null;

  constructor(
    private readonly bus: EventBus,
    private readonly info: {
      version: string;
      ring: () => string | null;
      config: () => unknown;
      pixelSizeUm: () => number;
      /** Seconds between timepoints when configured (null: unknown, the report counts timepoints). */
      timeStepS: () => number | null;
      redact: (text: string) => string;
    },
  ) {
    bus.on('acquisition-started', (e) => {
      this.cur =
        e.viewStores.length > 0
          ? {
              id: e.id,
              name: e.name,
              roots: e.viewStores,
              started: new Date().toISOString(),
              geometry: e.geometry,
              files: new Map(),
              unstored: {},
              stacks: [],
              drift: new Map(),
              alerts: [],
            }
          : null;
    });
    bus.on('alert', (e) => {
      if (!this.cur || e.update) return;
      const stream = e.stream ? streamId(e.stream) : null;
      const open = this.cur.alerts.find((a) => a.name === e.name && a.stream === stream && a.cleared === null);
      if (e.active && !open)
        this.cur.alerts.push({ name: e.name, stream, fired: new Date().toISOString(), cleared: null, message: e.message });
      else if (!e.active && open) open.cleared = new Date().toISOString();
    });
    bus.on('shard-written', (e) => this.cur?.files.set(path.resolve(e.path), { bytes: e.bytes, sha256: e.sha256 }));
    bus.on('frames-unstored', (e) => {
      if (this.cur) this.cur.unstored[e.reason] = (this.cur.unstored[e.reason] ?? 0) + e.count;
    });
    bus.on('frame-qc', (e) => {
      if (this.cur && e.qc.drift) this.cur.drift.set(`${streamId(e.stream)}/${e.meta.t}`, e.qc.drift.valid ? e.qc.drift : null);
    });
    bus.on('stack-qc', (e) => {
      if (!this.cur) return;
      const k = `${streamId(e.stream)}/${e.t}`;
      const d = this.cur.drift.get(k);
      this.cur.drift.delete(k);
      const q = e.qc;
      this.cur.stacks.push({
        t: e.t,
        channel: e.stream.channel,
        view: e.stream.view,
        planes: q.planes,
        focus_planes: q.focusPlanes,
        best_focus_z: q.bestFocusZ,
        mean_focus: q.focusPlanes > 0 ? q.meanFocus : null,
        focus_relative: q.focusRelative,
        max_saturated_ratio: q.maxSaturatedRatio,
        mean_signal: q.meanSignal,
        drift_px: d ? [d.dx, d.dy] : null,
        drift_confidence: d ? d.confidence : null,
      });
    });
  }

  /** Writes each view's manifest of the finished acquisition; called after its last stacks were judged. */
  finish(e: PipelineEvents['acquisition-finished']): void {
    const c = this.cur;
    this.cur = null;
    if (!c || c.id !== e.id) return;
    // One manifest per view's store: its own files and stacks; the frame counts are the acquisition's.
    c.roots.forEach((root, view) => {
      try {
        this.write(c, e.summary, root, view);
        this.bus.emit('log', { level: 'info', msg: 'manifest written', fields: { manifest: path.join(root, MANIFEST_NAME) } });
        this.bus.emit('manifest-written', { storePath: root, manifest: path.join(root, MANIFEST_NAME) });
      } catch (err) {
        this.bus.emit('log', { level: 'error', msg: `manifest not written: ${(err as Error).message}`, fields: { store: root } });
      }
    });
  }

  private write(c: Current, summary: AcquisitionSummary, root: string, view: number): void {
    const stacks = c.stacks.filter((st) => st.view === String(view));
    const finished = new Date().toISOString();
    const frames = {
      received: summary.framesReceived,
      lost: { overrun: summary.framesOverrun, gap: summary.framesGap, torn: summary.framesTorn },
      unstored: c.unstored,
      qc_sampled: summary.qcSampled,
      qc_sampled_reasons: summary.qcSampledReasons,
    };
    const bytes = { received: summary.bytesReceived, written: summary.bytesWritten, compression_ratio: summary.compressionRatio };
    let metadata: unknown = null;
    try {
      metadata =
        (JSON.parse(fs.readFileSync(path.join(root, 'zarr.json'), 'utf8')) as { attributes?: { spimstream?: unknown } }).attributes
          ?.spimstream ?? null;
    } catch {
      /* no group metadata: the manifest says null */
    }
    // The report first, so that the manifest (written last) lists it with the store's files.
    writeFileDurableSync(
      path.join(root, REPORT_NAME),
      this.info.redact(
        renderQcReport({
          name: c.name,
          started: c.started,
          finished,
          frames,
          bytes,
          stacks,
          metadata,
          pixelSizeUm: this.info.pixelSizeUm(),
          timeStepS: this.info.timeStepS(),
          alerts: c.alerts,
          version: this.info.version,
        }),
      ),
      path.join(root, `.${REPORT_NAME}.tmp-${process.pid}`),
    );
    // Every file under the root: shards as hashed when written, the rest (zarr.json) read back now.
    const files: { path: string; bytes: number; sha256: string }[] = [];
    for (const full of storeFiles(root)) {
      const known = c.files.get(full);
      const bytes = fs.statSync(full).size;
      const sha256 = known && known.bytes === bytes ? known.sha256 : createHash('sha256').update(fs.readFileSync(full)).digest('hex');
      files.push({ path: path.relative(root, full).split(path.sep).join('/'), bytes, sha256 });
    }
    // Shards already offloaded and deleted locally (offload.delete_local): listed from their write.
    const listed = new Set(files.map((f) => f.path));
    for (const [full, k] of c.files) {
      if (!full.startsWith(root + path.sep)) continue;
      const rel = path.relative(root, full).split(path.sep).join('/');
      if (!listed.has(rel) && !fs.existsSync(full)) files.push({ path: rel, bytes: k.bytes, sha256: k.sha256 });
    }
    files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const doc = {
      manifest_version: MANIFEST_VERSION,
      complete: true,
      acquisition: {
        id: c.id,
        name: c.name,
        store: path.basename(root),
        view,
        views: c.roots.length,
        started: c.started,
        finished,
        ring: this.info.ring(),
        geometry: c.geometry,
      },
      frames,
      bytes,
      stacks,
      metadata,
      files,
      spimstream_version: this.info.version,
      config: this.info.config(),
    };
    writeFileDurableSync(
      path.join(root, MANIFEST_NAME),
      `${this.info.redact(JSON.stringify(doc, null, 1))}\n`,
      path.join(root, `.${MANIFEST_NAME}.tmp-${process.pid}`),
    );
  }
}
