/** Reading the project's Markdown (README.md and docs/*.md) for the docs tests: fenced blocks, headings, links. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** README.md and every docs/*.md, as paths relative to the repository root. */
export function docFiles(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`);
  return ['README.md', ...docs];
}

export function readDoc(file: string): string {
  return readFileSync(join(ROOT, file), 'utf8');
}

export interface Block {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  body: string;
  /** The reason of a `<!-- not-run: REASON -->` comment on the line right before the fence (blank lines allowed). */
  notRun?: string;
  /** True when a `<!-- not-run ... -->` comment is there but gives no reason. */
  notRunWithoutReason?: boolean;
}

/** Every fenced code block of a file, with its info string's first word as `lang`. */
export function fencedBlocks(file: string, text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++) body.push(lines[i]!);
    let j = start - 1;
    while (j >= 0 && lines[j]!.trim() === '') j--;
    const marker = j >= 0 ? /^<!--\s*not-run(?::\s*(.*?))?\s*-->\s*$/.exec(lines[j]!) : null;
    const block: Block = { file, line: start + 1, lang: open[1]!.toLowerCase(), body: body.join('\n') };
    if (marker) {
      if (marker[1]?.trim()) block.notRun = marker[1].trim();
      else block.notRunWithoutReason = true;
    }
    blocks.push(block);
  }
  return blocks;
}

/** The text outside fenced blocks, with fenced lines blanked (so line numbers stay). */
export function proseLines(text: string): string[] {
  let fence = false;
  return text.split('\n').map((line) => {
    if (line.startsWith('```')) {
      fence = !fence;
      return '';
    }
    return fence ? '' : line;
  });
}

/** GitHub's heading anchor: lower-case, punctuation other than `-` and `_` dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M}_\- ]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a file defines: its headings' slugs, numbered as GitHub numbers repeats (`x`, `x-1`, ...). */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of proseLines(text)) {
    const m = /^#{1,6} (.*)$/.exec(line);
    if (!m) continue;
    const s = slug(m[1]!);
    const n = seen.get(s) ?? 0;
    seen.set(s, n + 1);
    out.add(n === 0 ? s : `${s}-${n}`);
  }
  return out;
}

export interface Link {
  file: string;
  line: number;
  target: string;
}

/** Inline Markdown links `[text](target)` in prose (not in fenced blocks or inline code). */
export function links(file: string, text: string): Link[] {
  const out: Link[] = [];
  proseLines(text).forEach((raw, i) => {
    const line = raw.replace(/`[^`]*`/g, '``');
    for (const m of line.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) out.push({ file, line: i + 1, target: m[1]! });
  });
  return out;
}
