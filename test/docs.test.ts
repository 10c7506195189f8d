import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type BenchReport, renderPerformance } from '../bench/perf-doc.js';
import { ROOT } from './helpers.js';

const DOCS = [
  'README.md',
  ...fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
  'grafana/README.md',
];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const m of markdown.matchAll(/^#{1,6} +(.+)$/gm)) {
    out.add(
      m[1]
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, '')
        .replace(/ /g, '-'),
    );
  }
  return out;
}

/** Relative links of a markdown file, outside code spans and fences. */
function links(markdown: string): string[] {
  const text = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)(?: "[^"]*")?\)/g)].map((m) => m[1]).filter((l) => !/^[a-z]+:/i.test(l));
}

describe('the README and docs', () => {
  it('every relative link resolves to a file, and every #anchor to a heading in it', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const doc of DOCS) {
      const text = fs.readFileSync(path.join(ROOT, doc), 'utf8');
      for (const link of links(text)) {
        checked++;
        const [file, anchor] = link.split('#');
        const target = file ? path.resolve(path.dirname(path.join(ROOT, doc)), decodeURIComponent(file)) : path.join(ROOT, doc);
        if (!fs.existsSync(target)) {
          broken.push(`${doc}: ${link} (no such file)`);
          continue;
        }
        if (anchor && target.endsWith('.md') && !anchors(fs.readFileSync(target, 'utf8')).has(anchor)) {
          broken.push(`${doc}: ${link} (no heading #${anchor})`);
        }
      }
    }
    expect(broken).toEqual([]);
    expect(checked).toBeGreaterThan(10);
  });

  it('the link checker finds a broken file link and a broken anchor', () => {
    expect(links('see [a](docs/x.md#y) and `[b](c.md)` and [web](https://x.org)')).toEqual(['docs/x.md#y']);
    expect(anchors('# The Ring: protocol\n## What to do (focus_lost)')).toEqual(new Set(['the-ring-protocol', 'what-to-do-focus_lost']));
  });

  it('the README stays a front door: at most 250 lines', () => {
    expect(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n').length).toBeLessThanOrEqual(250);
  });

  it('docs/performance.md is exactly what its report renders to (generated, never edited by hand)', () => {
    const report = JSON.parse(fs.readFileSync(path.join(ROOT, 'docs', 'performance.json'), 'utf8')) as BenchReport;
    expect(report.sections.length).toBeGreaterThan(5);
    expect(report.commit).toMatch(/^[0-9a-f]{7,}/);
    expect(fs.readFileSync(path.join(ROOT, 'docs', 'performance.md'), 'utf8')).toBe(renderPerformance(report));
  });
});
