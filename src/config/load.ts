import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, type YAMLError } from 'yaml';
import { AuthProxyError } from '../errors.js';
import { formatPath, proxyConfigSchema, type ProxyConfig } from './schema.js';

/** Parses YAML or JSON text (JSON is valid YAML); syntax errors are one line each, naming the line. */
export function parseYamlText(text: string, source: string): unknown {
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => `${source}: ${yamlErrorLine(e, lines)}`);
    throw new AuthProxyError('config_invalid', problems.join('; '), problems);
  }
  try {
    return doc.toJS() ?? {};
  } catch (err) {
    // toJS refuses documents whose aliases expand excessively (a "billion laughs" attack).
    const problem = `${source}: ${(err as Error).message.split('\n')[0]}`;
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
  const problems = result.error.issues.map((issue) => `${source}: ${pathPrefix}${formatPath(issue.path)}: ${issueMessage(issue)}`);
  throw new AuthProxyError('config_invalid', problems.join('; '), problems);
}

/** One line per YAML error: its line number and first message line, with any quoted source text cut out. */
function yamlErrorLine(err: YAMLError, lines: LineCounter): string {
  const where = err.pos ? `line ${lines.linePos(err.pos[0]).line}: ` : '';
  return `${where}${err.message.split('\n')[0]!.replace(/"[^"]*"/g, '"…"')}`;
}

/** A field-like key name is shown; anything else (a mis-indented secret, say) is not echoed. */
const SHOWABLE_KEY = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

/** zod's message, except that unrecognized keys are only named when they look like field names. */
function issueMessage(issue: { code: string; message: string; keys?: readonly string[] }): string {
  if (issue.code !== 'unrecognized_keys' || !issue.keys) return issue.message;
  const shown = issue.keys.map((k) => (SHOWABLE_KEY.test(k) ? `"${k}"` : 'a key that is not a field name'));
  return `Unrecognized key${shown.length > 1 ? 's' : ''}: ${shown.join(', ')}`;
}

/** Reads a config file; I/O errors become a one-line `config_io` error naming the file. */
export function readConfigFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new AuthProxyError('config_io', `${path}: cannot read config (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
