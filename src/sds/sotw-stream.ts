import type * as grpc from '@grpc/grpc-js';
import { DiscoveryResponse, type DiscoveryRequest } from '../gen/envoy/service/discovery/v3/discovery.js';
import type { Any } from '../gen/google/protobuf/any.js';
import { renewalTime } from './leaf-cache.js';
import { SECRET_TYPE_URL } from './secret-resource.js';
import { StreamState, type StreamContext } from './stream-state.js';

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

/**
 * `SecretDiscoveryService/StreamSecrets` (state of the world, api_type GRPC), for Envoy configs that
 * don't use DELTA_GRPC. Every request whose name set changed gets one response with a Secret for each
 * allowed name; an ACK (same names, with a nonce) and a NACK get none. SotW has no way to say "no such
 * secret", so a refused name is simply left out and Envoy's handshake waits for
 * `transport_socket_connect_timeout`: prefer the delta flavour. Renewals are pushed as in delta.
 */
export function streamSecretsHandler(
  ctx: StreamContext,
): grpc.handleBidiStreamingCall<DiscoveryRequest, DiscoveryResponse> {
  return (call) => {
    const sandboxId = ctx.sandboxIdOf(call);
    const state = new StreamState(call as grpc.ServerDuplexStream<unknown, unknown>, ctx, 'sotw');
    let names: string[] = [];
    /** Name -> version of the secret last sent for it. */
    const sent = new Map<string, string>();
    let version = 0;

    /** Sends the whole current set; `fresh` waits for a due renewal of that one name. */
    const respondAll = async (fresh?: string): Promise<void> => {
      const results = await Promise.all(names.map((name) => ctx.issuer.issue(name, sandboxId, name === fresh)));
      const resources: Any[] = [];
      for (const r of results) {
        if (r.kind === 'secret') {
          resources.push(r.resource);
          sent.set(r.name, r.version);
          state.schedule(r.name, renewalTime(r.leaf), () => renew(r.name));
        } else {
          sent.delete(r.name);
          state.cancel(r.name);
        }
      }
      version += 1;
      state.write(
        DiscoveryResponse.fromPartial({
          versionInfo: String(version),
          resources,
          typeUrl: SECRET_TYPE_URL,
          nonce: String(version),
        }),
      );
    };

    const renew = async (name: string): Promise<void> => {
      if (!names.includes(name)) return;
      await state.renew(
        name,
        sandboxId,
        sent.get(name),
        () => respondAll(name),
        () => renew(name),
      );
    };

    call.on('data', (req: DiscoveryRequest) => {
      state.run(async () => {
        if (state.screen(req, sandboxId) !== 'ok') return;
        const requested = [...new Set(req.resourceNames)].sort();
        if (req.responseNonce !== '' && sameNames(requested, names)) return; // an ACK
        for (const name of names) {
          if (!requested.includes(name)) {
            sent.delete(name);
            state.cancel(name);
          }
        }
        names = requested;
        if (names.length > 0) await respondAll();
      });
    });
  };
}
