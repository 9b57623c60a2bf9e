/**
 * The layering rule of docs/development.md, enforced: a folder under src/ imports only folders of its own
 * row of the layer table or of the rows before it (type imports included: `import type` and `{ type X }`
 * count, since a type import is a dependency of the design even when it is erased). The table is read from
 * docs/development.md, so the documented order and the enforced one are the same text.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const src = join(root, 'src');

/** Folder -> row index (0 = the bottom row), from the table between `<!-- layers: ... -->` and `<!-- /layers -->`. */
function layerTable(): Map<string, number> {
  const doc = readFileSync(join(root, 'docs/development.md'), 'utf8');
  const table = doc.slice(doc.indexOf('<!-- layers'), doc.indexOf('<!-- /layers -->'));
  const rows = table.split('\n').filter((l) => l.startsWith('|') && !/^\|[\s|:-]+\|$/.test(l));
  const ranks = new Map<string, number>();
  rows.slice(1).forEach((row, i) => {
    const folders = row.split('|')[2] ?? '';
    for (const m of folders.matchAll(/`src\/([a-z-]+)\/`/g)) ranks.set(m[1]!, i);
    if (folders.includes('the files directly in `src/`')) ranks.set('', i);
  });
  return ranks;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The relative specifiers a file imports or re-exports, static (value or type) and dynamic. */
function imports(text: string): string[] {
  const found = [
    ...text.matchAll(/^\s*(?:import|export)\b[^'";]*?\bfrom\s*['"](\.[^'"]+)['"]/gm),
    ...text.matchAll(/\bimport\s*\(\s*['"](\.[^'"]+)['"]\s*\)/g),
  ];
  return found.map((m) => m[1]!);
}

const folderOf = (file: string): string => {
  const parts = relative(src, file).split('/');
  return parts.length === 1 ? '' : parts[0]!;
};

describe('the layers of src/', () => {
  const ranks = layerTable();

  it('names every folder under src/ in the table of docs/development.md', () => {
    const folders = readdirSync(src, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    expect(ranks.size).toBeGreaterThan(5);
    expect(folders.filter((f) => !ranks.has(f))).toEqual([]);
  });

  it('has no import from a lower layer into a higher one', () => {
    const upward: string[] = [];
    for (const file of sourceFiles(src)) {
      const from = folderOf(file);
      if (from === 'gen') continue;
      for (const spec of imports(readFileSync(file, 'utf8'))) {
        const to = folderOf(resolve(dirname(file), spec));
        if (to !== from && ranks.get(to)! > ranks.get(from)!)
          upward.push(`${relative(src, file)} imports ${spec} (${from || 'src/'} is below ${to})`);
      }
    }
    expect(upward).toEqual([]);
  });
});
