/**
 * Unix sockets (ext_proc/SDS, the admin API, the side HTTP port) are created with their final mode: the
 * bind happens inside a private 0700 directory and the socket, already 0600, is renamed into place. So the
 * path is never bound directly and never appears with a looser mode, not even for an instant (before,
 * the socket was bound at the path with the umask's mode and chmod-ed afterwards).
 */
import { lstatSync, readdirSync, statSync, watch } from 'node:fs';
import { createServer } from 'node:http';
import { Server } from 'node:net';
import { basename, dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startAdminServer } from '../../src/admin/server.js';
import { AdminTokens } from '../../src/admin/tokens.js';
import { startExtProcServer } from '../../src/extproc/server.js';
import { createLogger } from '../../src/log.js';
import { listenHttp } from '../../src/sockets/listen.js';
import type { SandboxStore } from '../../src/sandboxes/store.js';
import { tempDir } from '../helpers/fs.js';

interface Bound {
  readonly path: string;
  /** Mode of the directory the socket is bound in, at the moment of the bind. */
  readonly dirMode: number;
  readonly dirOwner: number;
  /** Whether the final path existed when the bind happened. */
  readonly finalExisted: boolean;
}

/** Watches `dir` and lstat-s `name` on every event: the modes it was ever seen with. */
function watchModes(dir: string, name: string): { modes: number[]; stop(): void } {
  const modes: number[] = [];
  const w = watch(dir, (_event, file) => {
    if (file !== name) return;
    try {
      const s = lstatSync(join(dir, name));
      if (s.isSocket()) modes.push(s.mode & 0o777);
    } catch {
      /* gone again */
    }
  });
  return { modes, stop: () => w.close() };
}

const record = (final: string, bound: Bound[], path: string) =>
  bound.push({
    path,
    dirMode: statSync(dirname(path)).mode & 0o777,
    dirOwner: statSync(dirname(path)).uid,
    finalExisted: (() => {
      try {
        lstatSync(final);
        return true;
      } catch {
        return false;
      }
    })(),
  });

function expectPrivate(final: string, bound: Bound[], seen: number[]): void {
  expect(bound).toHaveLength(1);
  expect(bound[0]!.path).not.toBe(final);
  expect(bound[0]!).toMatchObject({ dirMode: 0o700, dirOwner: process.getuid!(), finalExisted: false });
  const s = lstatSync(final);
  expect(s.isSocket()).toBe(true);
  expect(s.mode & 0o777).toBe(0o600);
  expect(readdirSync(dirname(final))).toEqual([basename(final)]);
  expect(seen.every((m) => m === 0o600)).toBe(true);
}

describe('Unix sockets are never world-connectable, not even for an instant', () => {
  afterEach(() => vi.restoreAllMocks());

  it('ext_proc/SDS: bound inside a private directory, renamed into place 0600, removed on close', async () => {
    const dir = tempDir();
    const final = join(dir.path, 'authproxy.sock');
    const bound: Bound[] = [];
    const original = grpc.Server.prototype.bindAsync;
    vi.spyOn(grpc.Server.prototype, 'bindAsync').mockImplementation(function (this: grpc.Server, port, creds, cb) {
      if (port.startsWith('unix:')) record(final, bound, port.slice(5));
      return original.call(this, port, creds, cb);
    });
    const seen = watchModes(dir.path, basename(final));
    const server = await startExtProcServer(`unix:${final}`, {
      engine: {} as never,
      log: createLogger('silent'),
      identity: { defaultSandboxId: 'default', bindToClientCert: false },
    });
    await new Promise((r) => setTimeout(r, 50));
    seen.stop();
    expectPrivate(final, bound, seen.modes);
    await server.close();
    expect(readdirSync(dir.path)).toEqual([]);
    dir.cleanup();
  });

  it('admin API and the side HTTP port: the same', async () => {
    const dir = tempDir();
    const bound: Bound[] = [];
    let final = '';
    const original = Server.prototype.listen;
    vi.spyOn(Server.prototype, 'listen').mockImplementation(function (this: Server, ...args: unknown[]) {
      const first = args[0] as string | { path?: string };
      const path = typeof first === 'string' ? first : first?.path;
      if (typeof path === 'string') record(final, bound, path);
      return (original as (...a: unknown[]) => Server).apply(this, args);
    });
    final = join(dir.path, 'admin.sock');
    const admin = await startAdminServer({
      listen: `unix:${final}`,
      tokens: AdminTokens.fromText('admin-token-0123456789abcdef'),
      store: {} as SandboxStore,
      registry: { isFileSandbox: () => false, check: () => [] },
      sealPublicKey: undefined,
      log: createLogger('silent'),
    });
    expectPrivate(final, bound, []);
    await admin.close();
    expect(readdirSync(dir.path)).toEqual([]);

    bound.length = 0;
    final = join(dir.path, 'http.sock');
    const http = createServer();
    await listenHttp(http, `unix:${final}`);
    expectPrivate(final, bound, []);
    await new Promise((r) => http.close(r));
    expect(readdirSync(dir.path)).toEqual([]);
    dir.cleanup();
  });
});
