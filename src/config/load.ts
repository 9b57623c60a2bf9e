import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, type YAMLError } from 'yaml';
import { AuthProxyError } from '../errors.js';
import { formatPath, proxyConfigSchema, type ProxyConfig } from './schema.js';

/** Parses YAML or JSON text (JSON is valid YAML); syntax errors are one line each, naming the line. */
export function parseYamlText(text: string, source: string): unknown {
  const lines = new LineCounter();
  // resolveKnownTags: false keeps YAML 1.1's !!omap, !!set, !!binary and !!timestamp from becoming a Map,
  // Set, Uint8Array or Date, which the schema would read as an object without keys: a `!!omap` root would
  // have been an empty config, silently dropping its access_control. logLevel: 'error' keeps the library
  // from printing warnings (which quote the document) on stderr.
  const doc = parseDocument(text, {
    prettyErrors: false,
    uniqueKeys: true,
    lineCounter: lines,
    resolveKnownTags: false,
    logLevel: 'error',
  });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => `${source}: ${yamlErrorLine(e, lines)}`);
    throw new AuthProxyError('config_invalid', problems.join('; '), problems);
  }
  try {
    return doc.toJS() ?? {};
  } catch (err) {
    // toJS refuses documents whose aliases expand excessively (a "billion laughs" attack).
    const problem = `${source}: ${withoutSource((err as Error).message)}`;
    throw new AuthProxyError('config_invalid', problem, [problem]);
  }
}

/**
 * Parses and validates proxy_config text. Throws one `config_invalid` error whose problems are each one
 * line: `SOURCE: field.path: message`.
 */
export function parseConfigText(text: string, source: string): ProxyConfig {
  return validateConfig(parseYamlText(text, source), source);
}

/** Validates an already-parsed value as a proxy_config, with field-named one-line problems. */
export function validateConfig(value: unknown, source: string, pathPrefix = ''): ProxyConfig {
  const result = proxyConfigSchema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map(
    (issue) => `${source}: ${pathPrefix}${formatPath(issue.path)}: ${issueMessage(issue)}`,
  );
  throw new AuthProxyError('config_invalid', problems.join('; '), problems);
}

/** One line per YAML error: its line number and first message line, with any quoted source text cut out. */
function yamlErrorLine(err: YAMLError, lines: LineCounter): string {
  const where = err.pos ? `line ${lines.linePos(err.pos[0]).line}: ` : '';
  return `${where}${withoutSource(err.message)}`;
}

/**
 * The first line of a YAML library message without the document text it may quote: whatever follows
 * ": " (a token's source, an alias name, a scalar header) and anything in double quotes.
 */
function withoutSource(message: string): string {
  const first = message.split('\n')[0]!;
  const cut = first.indexOf(': ');
  return (cut < 0 ? first : first.slice(0, cut)).replace(/"[^"]*"/g, '"…"');
}

/**
 * A field-like key name is shown; anything else (a mis-indented secret, say) is not echoed. No field name
 * has a digit and almost every token does (`ghp_…`, `sk-…`), so a key with a digit is never shown.
 */
const SHOWABLE_KEY = /^[A-Za-z_][A-Za-z_-]{0,39}$/;

/** Whether a key looks like a field name, so that a problem may show it (see SHOWABLE_KEY). */
export function isShowableKey(key: string): boolean {
  return SHOWABLE_KEY.test(key);
}

/** zod's message, except that unrecognized keys are only named when they look like field names. */
export function issueMessage(issue: { code: string; message: string; keys?: readonly string[] }): string {
  if (issue.code !== 'unrecognized_keys' || !issue.keys) return issue.message;
  const shown = issue.keys.map((k) => (SHOWABLE_KEY.test(k) ? `"${k}"` : 'a key that is not a field name'));
  return `Unrecognized key${shown.length > 1 ? 's' : ''}: ${shown.join(', ')}`;
}

/** Reads a config file; I/O errors become a one-line `config_io` error naming the file. */
export function readConfigFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new AuthProxyError(
      'config_io',
      `${path}: cannot read config (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}
