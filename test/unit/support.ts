/**
 * Small helpers shared by the unit tests (not a test file itself). Everything here is pure: configs are
 * parsed from text and compiled against an in-memory secrets map.
 */
import { AuthProxyError } from '../../src/errors.js';
import { compilePolicy, type CompileContext } from '../../src/config/compile.js';
import { parseConfigText } from '../../src/config/load.js';
import type { CompiledPolicy } from '../../src/policy/compiled.js';
import type { ValueUnsealer } from '../../src/secrets/sealing.js';

/** Obviously fake secret values; tests check that they never appear in error messages. */
export const CANARY = {
  openai: 'sk-FAKE-openai-canary-0000',
  anthropic: 'sk-ant-FAKE-canary-1111',
  github: 'ghp_FAKEcanary2222',
  gitBasic: 'eC1hY2Nlc3MtdG9rZW46RkFLRS1jYW5hcnk=',
} as const;

export const LANGCHAIN_SECRETS: ReadonlyMap<string, string> = new Map([
  ['OPENAI_API_KEY', CANARY.openai],
  ['ANTHROPIC_API_KEY', CANARY.anthropic],
  ['GITHUB_TOKEN', CANARY.github],
  ['GITHUB_GIT_BASIC', CANARY.gitBasic],
]);

/** Parses and compiles YAML text; throws what either step throws. */
export function policyFrom(
  yaml: string,
  secrets: ReadonlyMap<string, string> = new Map(),
  unsealer?: ValueUnsealer,
  /** The sandbox the config is applied for, `--allow-unbound-seals`, ... */
  extra: Partial<Omit<CompileContext, 'secrets' | 'unsealer'>> = {},
): CompiledPolicy {
  return compilePolicy(parseConfigText(yaml, 'TEST'), { ...extra, secrets, unsealer });
}

/** Runs `fn`, which must throw an AuthProxyError, and returns it. */
export function thrown(fn: () => unknown): AuthProxyError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AuthProxyError) return err;
    throw new Error(`expected an AuthProxyError, got ${String(err)}`);
  }
  throw new Error('expected an AuthProxyError, but nothing was thrown');
}
