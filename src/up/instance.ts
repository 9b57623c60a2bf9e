import { readFileSync, rmSync } from 'node:fs';
import { z } from 'zod';
import { accepts } from './envoy-process.js';
import { writeAtomically, type UpState } from './state.js';

/**
 * What a running `authproxy up` records in its state directory (`up.json`) once it is ready, so that
 * `up --print-env` needs no flags repeated: the proxy port, the config, the sandbox id and where Envoy's
 * access log goes. Removed when `up` stops; one left by a killed `up` is recognised as stale because
 * nothing accepts on the state directory's authproxy socket.
 */
const Instance = z.object({
  pid: z.number().int().positive(),
  proxyPort: z.number().int().min(1).max(65535),
  config: z.string().min(1),
  sandboxId: z.string().min(1),
  accessLog: z.string().min(1),
});
export type UpInstance = z.infer<typeof Instance>;

/** Records the running instance (0600, written atomically). */
export function writeInstance(state: UpState, instance: UpInstance): void {
  writeAtomically(state.instance, `${JSON.stringify(instance, null, 2)}\n`, 0o600);
}

/** Forgets the instance (on a clean stop). */
export function removeInstance(state: UpState): void {
  rmSync(state.instance, { force: true });
}

/**
 * The `up` running on this state directory, or undefined when none is (no `up.json`, an unreadable one,
 * or one whose `up` is gone: its process no longer exists or nothing accepts on the authproxy socket).
 */
export async function runningInstance(state: UpState): Promise<UpInstance | undefined> {
  let instance: UpInstance;
  try {
    const parsed = Instance.safeParse(JSON.parse(readFileSync(state.instance, 'utf8')));
    if (!parsed.success) return undefined;
    instance = parsed.data;
    process.kill(instance.pid, 0);
  } catch {
    return undefined;
  }
  return (await accepts(state.socket)) ? instance : undefined;
}
