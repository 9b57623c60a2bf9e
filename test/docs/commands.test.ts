/**
 * Every ```sh / ```bash / ```console block of README.md and docs/*.md is either run here or marked, right
 * before the block, with `<!-- not-run: REASON -->`. A block runs when every command in it is one this test
 * knows how to run: the print-only `authproxy` commands (validate, explain, seal, keys init, ca init, ca bundle,
 * jwks, schema, envoy-config, sandbox-env, sandbox-net without --apply/--remove, up --print-env, --help), as
 * `authproxy ...` or `npx authproxy ...`, fed by printf/base64 and eval. It runs under bash (`set -euo
 * pipefail`) in a fresh temporary directory holding a copy of examples/ (also as config.yaml and secrets/),
 * keys and an interception CA in keys/ (unless the block makes its own), and /etc/authproxy mapped into that
 * directory; `authproxy` is the built CLI (bin/authproxy.js over dist/: run `npx tsc -p .` first).
 * Any other block without a reason fails, and the reasons are printed by one test (none is a skipped test).
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docFiles, fencedBlocks, readDoc, ROOT, type Block } from './markdown.js';

const BIN = join(ROOT, 'bin/authproxy.js');
const SHELL_LANGS = new Set(['sh', 'bash', 'console', 'shell']);
const PRINT_ONLY = new Set([
  'validate',
  'explain',
  'seal',
  'jwks',
  'schema',
  'envoy-config',
  'sandbox-env',
  '--help',
  '-h',
]);
/** Fake secrets a block may read from its environment; they must never show up in any output. */
const ENV_SECRETS = { TOKEN: 'ghp_docsTestCanary0001', GITHUB_TOKEN: 'ghp_docsTestCanary0002' };

interface Expectation {
  /** Which block(s): matched against the block's text. */
  block: RegExp;
  stdout?: RegExp[];
  /** Files the block must leave behind (relative to its directory), with content to match. */
  files?: Record<string, RegExp>;
}

const EXPECTATIONS: Expectation[] = [
  {
    block: /explain .* GET https:\/\/api\.github\.com\/user\n.*orgs\/x.*\n.*http:\/\/api\.openai\.com/,
    stdout: [
      /"outcome": "inject",[\s\S]*"rule": "github-api"/,
      /"path": "\/orgs\/x",\n\s*"outcome": "pass"/,
      /"status": 403,\n\s*"reason": "cleartext"/,
      /"value": "\[redacted\]"/,
    ],
  },
  {
    block: /explain .*API\.GitHub\.com\.:443/,
    stdout: [/"host": "api\.github\.com",\n\s*"port": 443,[\s\S]*"rule": "github-api"/],
  },
  {
    block: /keys init --dir \.\/keys[^\n]*\n[^\n]*seal --public-key keys\/sealing\.pub --sandbox sb-123/,
    stdout: [/^sealed:\S{40,}$/m],
  },
  { block: /base64 -w0\)" \| npx authproxy seal/, stdout: [/^sealed:\S{40,}$/m] },
  {
    block: /eval "\$\(npx authproxy up --print-env --config config\.yaml\)"/,
    stdout: [/^__ENV HTTPS_PROXY=http:\/\/127\.0\.0\.1:10000$/m],
    files: { '.authproxy/ca-bundle.pem': /BEGIN CERTIFICATE/ },
  },
  {
    block: /keys init --dir \/etc\/authproxy\/keys[^\n]*\n[^\n]*ca init/,
    files: { 'etc/authproxy/keys/sealing.pub': /./, 'etc/authproxy/keys/ca.crt': /BEGIN CERTIFICATE/ },
  },
  {
    block: /envoy-config --sandbox-id sb-123 --proxy-port 10000/,
    files: { 'envoy.yaml': /x-sandbox-id[\s\S]*sb-123/ },
  },
  {
    block: /ca bundle --ca-cert \/etc\/authproxy\/keys\/ca\.crt/,
    stdout: [
      /^export HTTPS_PROXY='http:\/\/127\.0\.0\.1:10000'$/m,
      /^export GIT_SSL_CAINFO='.*\/etc\/authproxy\/ca-bundle\.pem'$/m,
      /^export GH_TOKEN='proxy-injected'$/m,
    ],
    files: { 'etc/authproxy/ca-bundle.pem': /BEGIN CERTIFICATE/ },
  },
  {
    block: /envoy-config --sandbox-id sb-123 --authproxy authproxy\.internal:7000/,
    stdout: [/authproxy\.internal/, /sb-123\.crt/],
  },
  { block: /jwks --signing-key keys\/signing\.key/, stdout: [/"alg": "EdDSA"/] },
  {
    block: /sandbox-net --listener-port 10000/,
    stdout: [/^#!\/bin\/sh/m, /AUTHPROXY_OUTPUT/],
    files: { 'envoy.yaml': /transparent/ },
  },
  {
    block: /explain --config examples\/rewrite\.yaml/,
    stdout: [
      /"outcome": "rewrite"/,
      /"url": "https:\/\/api\.new\.example\/v1\/items\?page=2"/,
      /"credentials": "strip"/,
    ],
  },
  { block: /npx authproxy --help/, stdout: [/Usage: authproxy/, /sandbox-net/] },
  {
    block: /^npx authproxy validate --config examples\/config\.yaml --secrets-dir examples\/secrets {3}#/,
    stdout: [/valid \(5 rules, 0 callbacks\)/],
    files: { 'proxy-config.schema.json': /"\$schema"/ },
  },
];

/** The command lines of a block: continuation lines joined, comments and blank lines dropped. */
function commandLines(block: Block): string[] {
  let lines = block.body.split('\n');
  if (block.lang === 'console') lines = lines.filter((l) => l.startsWith('$ ')).map((l) => l.slice(2));
  const joined: string[] = [];
  let current = '';
  for (const line of lines) {
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    joined.push(current + line);
    current = '';
  }
  return joined.map(stripComment).filter((l) => l.trim() !== '');
}

/** Drops a `#` comment that is outside quotes and starts a word. */
function stripComment(line: string): string {
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) {
      return line.slice(0, i);
    }
  }
  return line;
}

/** Why a command line can't be run here, or null when it can. */
function notRunnable(line: string): string | null {
  // Blank out single-quoted text, then split into simple commands at |, &&, ||, ;, $( and ).
  const plain = line.replace(/'[^']*'/g, "''");
  for (let segment of plain.split(/\|\||&&|\||;|\$\(|\)/)) {
    segment = segment.trim().replace(/^"+/, '').trim();
    if (segment === '' || segment === '"') continue;
    if (/^eval\s+"?$/.test(segment)) continue;
    const words = segment.split(/\s+/);
    if (words[0] === 'npx') words.shift();
    const [cmd, sub, sub2] = words;
    if (cmd === 'printf' || cmd === 'base64') continue;
    if (cmd !== 'authproxy') return `\`${cmd}\` is not a command this test runs`;
    if (sub === undefined) return '`authproxy` without a command';
    if (PRINT_ONLY.has(sub)) continue;
    if ((sub === 'keys' && sub2 === 'init') || (sub === 'ca' && (sub2 === 'init' || sub2 === 'bundle'))) continue;
    if (sub === 'sandbox-net' && !words.includes('--apply') && !words.includes('--remove')) continue;
    if (sub === 'up' && words.includes('--print-env')) continue;
    return `\`authproxy ${sub}\` does not just print (it serves, applies or runs until stopped)`;
  }
  return null;
}

function runnable(block: Block): { ok: true; lines: string[] } | { ok: false; why: string } {
  const lines = commandLines(block);
  if (lines.length === 0) return { ok: false, why: 'no command in the block' };
  for (const line of lines) {
    const why = notRunnable(line);
    if (why) return { ok: false, why: `${why}: ${line.trim()}` };
  }
  return { ok: true, lines };
}

let template: string;
let compileCache: string;
const dirs: string[] = [];

beforeAll(() => {
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npx tsc -p .` first');
  // Node's compile cache, shared by every CLI run of this file: most of a run's CPU is compiling modules.
  compileCache = mkdtempSync(join(tmpdir(), 'authproxy-docs-ncc-'));
  template = mkdtempSync(join(tmpdir(), 'authproxy-docs-keys-'));
  dirs.push(compileCache, template);
  for (const args of [
    ['keys', 'init', '--dir', template],
    ['ca', 'init', '--dir', template],
  ]) {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: cleanEnv() });
    if (r.status !== 0) throw new Error(`authproxy ${args.join(' ')} failed: ${r.stderr}`);
  }
}, 60_000);

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AUTHPROXY_') && k !== 'ENVOY_BIN') env[k] = v;
  return {
    ...env,
    ...ENV_SECRETS,
    NODE_COMPILE_CACHE: compileCache,
    PATH: `${join(process.execPath, '..')}:${process.env.PATH ?? ''}`,
  };
}

/** A fresh directory with the fixtures a block may name. */
function fixture(body: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'authproxy-docs-'));
  dirs.push(dir);
  const examples = join(ROOT, 'examples');
  cpSync(examples, join(dir, 'examples'), { recursive: true });
  cpSync(join(examples, 'config.yaml'), join(dir, 'config.yaml'));
  cpSync(join(examples, 'secrets'), join(dir, 'secrets'), { recursive: true });
  mkdirSync(join(dir, 'etc/authproxy'), { recursive: true });
  cpSync(join(examples, 'config.yaml'), join(dir, 'etc/authproxy/config.yaml'));
  cpSync(join(examples, 'secrets'), join(dir, 'etc/authproxy/secrets'), { recursive: true });
  const made = new Set(
    [...body.matchAll(/(?:keys|ca) init\s+--dir\s+(\S+)/g)].map((m) => m[1]!.replace(/^\.\//, '').replace(/\/$/, '')),
  );
  for (const keys of ['keys', 'etc/authproxy/keys']) {
    if (made.has(keys) || made.has(`/${keys}`)) continue;
    cpSync(template, join(dir, keys), { recursive: true });
  }
  return dir;
}

function run(script: string, cwd: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const PRELUDE = [
  'set -euo pipefail',
  `authproxy() { node ${JSON.stringify(BIN)} "$@"; }`,
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell function, where ${1:-} is shell syntax
  'npx() { if [ "${1:-}" = authproxy ]; then shift; authproxy "$@"; else echo "npx $*: not provided by the docs test" >&2; return 127; fi; }',
].join('\n');

const blocks = docFiles()
  .flatMap((f) => fencedBlocks(f, readDoc(f)))
  .filter((b) => SHELL_LANGS.has(b.lang));
const used = new Set<Expectation>();
const secretValues = [
  ...Object.values(ENV_SECRETS),
  ...readdirSync(join(ROOT, 'examples/secrets')).map((k) =>
    readFileSync(join(ROOT, 'examples/secrets', k), 'utf8').trim(),
  ),
].filter((v) => v.length >= 8);

describe('commands in README.md and docs/', () => {
  it('finds shell blocks to check', () => {
    expect(blocks.length).toBeGreaterThan(15);
  });

  describe.concurrent('blocks', () => {
    for (const block of blocks) {
      const where = `${block.file}:${block.line}`;
      if (block.notRunWithoutReason) {
        it(`${where}: a not-run marker needs a reason`, () => {
          throw new Error(`${where}: write <!-- not-run: REASON --> with the reason`);
        });
        continue;
      }
      if (block.notRun) continue; // listed, with its reason, by the test below

      const r = runnable(block);
      if (!r.ok) {
        it(`${where}: unmarked block this test cannot run`, () => {
          throw new Error(
            `${where}: ${r.why}. Make it runnable, or mark it with <!-- not-run: REASON --> right before the block`,
          );
        });
        continue;
      }
      const expectations = EXPECTATIONS.filter((e) => e.block.test(block.body));
      for (const e of expectations) used.add(e);
      it(`${where}: runs (${r.lines.length} command${r.lines.length === 1 ? '' : 's'})`, async () => {
        const dir = fixture(block.body);
        const body = block.body.replaceAll('/etc/authproxy', `${dir}/etc/authproxy`);
        const script = `${PRELUDE}\n${body}\necho "__ENV HTTPS_PROXY=\${HTTPS_PROXY:-}"\n`;
        const res = await run(script, dir);
        expect(res.status, `${where} exited ${res.status}\n--- stdout\n${res.stdout}\n--- stderr\n${res.stderr}`).toBe(
          0,
        );
        for (const secret of secretValues) {
          expect(res.stdout.includes(secret) || res.stderr.includes(secret), `${where} printed a secret value`).toBe(
            false,
          );
        }
        for (const e of expectations) {
          for (const re of e.stdout ?? []) expect(res.stdout, `${where}: stdout should match ${re}`).toMatch(re);
          for (const [file, re] of Object.entries(e.files ?? {})) {
            const path = join(dir, file);
            expect(existsSync(path), `${where}: should leave ${file}`).toBe(true);
            expect(readFileSync(path, 'utf8')).toMatch(re);
          }
        }
      }, 60_000);
    }
  });

  it('blocks marked not-run each give a reason, printed here (they are not skipped tests: nothing is left out silently)', () => {
    const marked = blocks.filter((b) => b.notRun);
    expect(marked.length).toBeGreaterThan(0);
    for (const b of marked) expect(b.notRun!.trim().length, `${b.file}:${b.line}`).toBeGreaterThan(10);
    console.log(marked.map((b) => `not run: ${b.file}:${b.line}: ${b.notRun}`).join('\n'));
  });

  it('every expectation matches a runnable block (so none goes stale)', () => {
    const stale = EXPECTATIONS.filter((e) => !used.has(e)).map((e) => String(e.block));
    expect(stale).toEqual([]);
  });
});
