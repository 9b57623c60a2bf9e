/**
 * A Unix-socket relay a chaos step can take down: it forwards each connection to `target` until `down()`
 * closes the listener, destroys the connections in flight and removes the socket (so new connections
 * fail at once, as to a dead process); `up()` listens again.
 */
import { rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';

/** A relay from `path` to `target` (both Unix socket paths); listening as soon as it is created. */
export class SocketRelay {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  /** Connections accepted since the start. */
  accepted = 0;

  constructor(
    readonly path: string,
    private readonly target: string,
  ) {
    this.up();
  }

  /** Listens (again) on `path`. */
  up(): void {
    if (this.server) return;
    rmSync(this.path, { force: true });
    const server = createServer((down) => {
      this.accepted++;
      const upstream = connect(this.target);
      for (const s of [down, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          down.destroy();
          upstream.destroy();
        });
      }
      down.pipe(upstream);
      upstream.pipe(down);
    });
    server.listen(this.path);
    this.server = server;
  }

  /** Stops listening, cuts every relayed connection and removes the socket. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((r) => server.close(() => r()));
    rmSync(this.path, { force: true });
  }
}
