import type * as grpc from '@grpc/grpc-js';
import { DeltaDiscoveryResponse, type DeltaDiscoveryRequest } from '../gen/envoy/service/discovery/v3/discovery.js';
import type { Issued } from './issuer.js';
import { renewalTime } from './leaf-cache.js';
import { SECRET_TYPE_URL } from './secret-resource.js';
import { StreamState, type StreamContext } from './stream-state.js';

/**
 * `SecretDiscoveryService/DeltaSecrets`, what Envoy's on-demand certificate selector uses (api_type
 * DELTA_GRPC), one stream per SNI. Each subscribed name is answered with a Secret or, when refused, in
 * `removed_resources`: that fails the pending handshake at once instead of letting it hang until
 * `transport_socket_connect_timeout`. Renewed leaves are pushed on the open stream before the old ones
 * expire; a name the policy no longer allows is pushed as removed at its renewal. A NACK is logged and
 * not answered, so a secret Envoy rejects can't start a resend loop.
 */
export function deltaSecretsHandler(
  ctx: StreamContext,
): grpc.handleBidiStreamingCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse> {
  return (call) => {
    const sandboxId = ctx.sandboxIdOf(call);
    const state = new StreamState(call as grpc.ServerDuplexStream<unknown, unknown>, ctx, 'delta');
    /** Subscribed names that were answered with a secret -> the version sent. */
    const sent = new Map<string, string>();
    let nonce = 0;

    const respond = (results: readonly Issued[]): void => {
      const resources = [];
      const removed = [];
      for (const r of results) {
        if (r.kind === 'secret') {
          resources.push({ name: r.name, version: r.version, resource: r.resource });
          sent.set(r.name, r.version);
          state.schedule(r.name, renewalTime(r.leaf), () => renew(r.name));
        } else {
          removed.push(r.name);
          sent.delete(r.name);
          state.cancel(r.name);
        }
      }
      if (resources.length === 0 && removed.length === 0) return;
      nonce += 1;
      state.write(
        DeltaDiscoveryResponse.fromPartial({
          systemVersionInfo: String(nonce),
          resources,
          removedResources: removed,
          typeUrl: SECRET_TYPE_URL,
          nonce: String(nonce),
        }),
      );
    };

    const renew = async (name: string): Promise<void> => {
      if (!sent.has(name)) return;
      await state.renew(
        name,
        sandboxId,
        sent.get(name),
        (result) => respond([result]),
        () => renew(name),
      );
    };

    call.on('data', (req: DeltaDiscoveryRequest) => {
      state.run(async () => {
        if (state.screen(req, sandboxId) === false) return;
        for (const name of req.resourceNamesUnsubscribe) {
          sent.delete(name);
          state.cancel(name);
        }
        // A re-subscribe to a name already sent is answered again: Envoy asks when it needs it.
        const names = [...new Set(req.resourceNamesSubscribe)];
        if (names.length === 0) return;
        respond(await Promise.all(names.map((name) => ctx.issuer.issue(name, sandboxId))));
      });
    });
  };
}
