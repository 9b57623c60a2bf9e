import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { AuthProxyError, errorLine } from '../errors.js';
import type { Logger } from '../log.js';
import type { ValueUnsealer } from '../secrets/sealing.js';
import { readSecretsDir } from '../secrets/workspace.js';
import { compileFile, parseConfigFile, type CompiledFile } from './file.js';
import { readConfigFile } from './load.js';

/** Where a sidecar's config comes from. */
export interface ConfigSources {
  readonly configPath: string;
  readonly secretsDir: string | undefined;
  readonly unsealer: ValueUnsealer | undefined;
  /** The sandbox the top-level config is compiled for (`--sandbox-id`): sealed values in it are bound to it or to `*`. */
  readonly defaultSandboxId?: string;
  /** `--allow-unbound-seals`. */
  readonly allowUnboundSeals?: boolean;
  /** `--gcp-token-uri-allow`: token endpoints besides Google's that a service-account key may name. */
  readonly gcpTokenUriAllow?: readonly string[];
}

/** The inputs of one load, with a fingerprint so unchanged inputs are not compiled again. */
function readInputs(src: ConfigSources): { text: string; secrets: Map<string, string>; fingerprint: string } {
  const text = readConfigFile(src.configPath);
  const secrets = src.secretsDir ? readSecretsDir(src.secretsDir) : new Map<string, string>();
  const hash = createHash('sha256').update(text);
  for (const [k, v] of secrets) hash.update(`\0${k}\0${v}`);
  return { text, secrets, fingerprint: hash.digest('hex') };
}

/** One applied load: the compiled file and the workspace secrets it was compiled with. */
export interface LoadedSources {
  readonly file: CompiledFile;
  /** Kept so that configs from the admin API are resolved against the same secrets. */
  readonly secrets: ReadonlyMap<string, string>;
  readonly fingerprint: string;
}

/** Loads and compiles the config file once; problems name the file and field. */
export function loadSources(src: ConfigSources): LoadedSources {
  return compileInputs(src, readInputs(src));
}

/** Parses and compiles inputs already read, all or nothing (shared by the first load and every reload). */
function compileInputs(src: ConfigSources, inputs: ReturnType<typeof readInputs>): LoadedSources {
  const ctx = {
    secrets: inputs.secrets,
    unsealer: src.unsealer,
    sandboxId: src.defaultSandboxId,
    allowUnboundSeals: src.allowUnboundSeals,
    gcpTokenUriAllow: src.gcpTokenUriAllow,
  };
  const file = compileFile(parseConfigFile(inputs.text, src.configPath), ctx, src.configPath);
  return { file, secrets: inputs.secrets, fingerprint: inputs.fingerprint };
}

/**
 * What applying a reload did: 'applied' at once, or 'deferred' (it waits for something, e.g. a provider
 * module, and then applies, logs and counts itself). An apply that returns nothing counts as applied.
 */
export type ApplyOutcome = 'applied' | 'deferred';

/**
 * Watches the config file's directory and the secrets directory (which also catches Kubernetes' `..data`
 * symlink swap and editors that replace files), plus a slow poll in case an event is missed. A valid
 * change is compiled and handed to `apply` whole; an invalid one logs one error line and keeps the last
 * good config.
 */
export class ConfigWatcher {
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private poller: NodeJS.Timeout | undefined;
  private lastSeen: string;
  private lastError: string | undefined;

  constructor(
    private readonly src: ConfigSources,
    initialFingerprint: string,
    private readonly apply: (loaded: LoadedSources) => ApplyOutcome | undefined,
    private readonly log: Logger,
    private readonly options: {
      debounceMs?: number;
      pollMs?: number;
      onReload?: (result: 'ok' | 'failed') => void;
    } = {},
  ) {
    this.lastSeen = initialFingerprint;
  }

  start(): this {
    const dirs = new Set([dirname(this.src.configPath), ...(this.src.secretsDir ? [this.src.secretsDir] : [])]);
    for (const dir of dirs) {
      try {
        const w = watch(dir, { persistent: false }, () => this.schedule());
        w.on('error', () => this.schedule());
        this.watchers.push(w);
      } catch (err) {
        this.log.warn({ dir, err: errorLine(err) }, 'cannot watch directory; relying on polling');
      }
    }
    this.poller = setInterval(() => this.reload(), this.options.pollMs ?? 2000);
    this.poller.unref();
    return this;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reload(), this.options.debounceMs ?? 100);
    this.timer.unref();
  }

  /** Re-reads the inputs and applies them if they changed. Public so tests and SIGHUP can force it. */
  reload(): void {
    let fingerprint: string | undefined;
    try {
      const inputs = readInputs(this.src);
      fingerprint = inputs.fingerprint;
      if (fingerprint === this.lastSeen) return;
      this.lastSeen = fingerprint;
      const loaded = compileInputs(this.src, inputs);
      const { file } = loaded;
      const outcome = this.apply(loaded);
      this.lastError = undefined;
      if (outcome === 'deferred') return;
      this.options.onReload?.('ok');
      this.log.info(
        { file: this.src.configPath, rules: file.default?.rules.length ?? 0, sandboxes: file.sandboxes.size },
        'config reloaded',
      );
    } catch (err) {
      const message =
        err instanceof AuthProxyError
          ? err.problems.map((p) => (p.startsWith(this.src.configPath) ? p : `${this.src.configPath}: ${p}`)).join('; ')
          : errorLine(err);
      // A changed input that was rejected counts once; an input that can't be read counts when its error changes
      // (it is retried on every poll).
      if (fingerprint !== undefined || message !== this.lastError) this.options.onReload?.('failed');
      if (message === this.lastError) return;
      this.lastError = message;
      this.log.error({ file: this.src.configPath }, `config reload rejected, keeping the last good config: ${message}`);
    }
  }

  stop(): void {
    clearTimeout(this.timer);
    clearInterval(this.poller);
    for (const w of this.watchers) w.close();
  }
}
