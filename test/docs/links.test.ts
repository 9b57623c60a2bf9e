/** Every relative link and #anchor in README.md and docs/*.md resolves; every docs page is reachable from the README. */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { anchors, docFiles, links, readDoc, ROOT } from './markdown.js';

const files = docFiles();
/** Checked for links too: the Python client's README, which points into docs/. */
const EXTRA = ['clients/python/README.md'];
const texts = new Map([...files, ...EXTRA].map((f) => [f, readDoc(f)]));

function anchorsOf(file: string): Set<string> {
  return anchors(texts.get(file) ?? readDoc(file));
}

describe('docs links', () => {
  it('finds the README and the docs pages', () => {
    expect(files).toContain('README.md');
    expect(files.length).toBeGreaterThan(10);
  });

  for (const file of [...files, ...EXTRA]) {
    it(`${file}: every relative link and anchor resolves`, () => {
      const broken: string[] = [];
      for (const link of links(file, texts.get(file)!)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link.target)) continue; // https:, mailto:, ...
        const [path, anchor] = link.target.split('#', 2) as [string, string | undefined];
        const target = path === '' ? file : normalize(join(dirname(file), decodeURI(path)));
        const where = `${file}:${link.line} -> ${link.target}`;
        if (target.startsWith('..') || !existsSync(join(ROOT, target))) {
          broken.push(`${where}: no such file ${target}`);
          continue;
        }
        if (anchor !== undefined) {
          if (!target.endsWith('.md') || statSync(join(ROOT, target)).isDirectory()) {
            broken.push(`${where}: an anchor into a file that is not Markdown`);
          } else if (!anchorsOf(target).has(anchor)) {
            broken.push(`${where}: no heading with anchor #${anchor} in ${target}`);
          }
        }
      }
      expect(broken).toEqual([]);
    });
  }

  it('every docs page is linked from the README', () => {
    const linked = new Set(
      links('README.md', texts.get('README.md')!)
        .map((l) => l.target.split('#')[0]!)
        .filter((t) => t.startsWith('docs/'))
        .map((t) => normalize(t)),
    );
    const missing = files.filter((f) => f !== 'README.md' && !linked.has(relative('.', f)));
    expect(missing).toEqual([]);
  });

  it('the README stays a front door (about 200 lines at most) and keeps the test command CI reads', () => {
    const readme = texts.get('README.md')!;
    expect(readme.split('\n').length).toBeLessThanOrEqual(220);
    expect(readme).toMatch(/^npm test\b/m);
  });
});
