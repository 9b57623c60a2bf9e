/**
 * An Envoy-like SDS client built from Envoy's own protos (shipped by @grpc/grpc-js-xds) with
 * @grpc/proto-loader, independent of our generated code, so tests check the wire format Envoy sees.
 * `json: true` makes proto-loader unpack each google.protobuf.Any with its own type for
 * envoy.extensions.transport_sockets.tls.v3.Secret (loaded alongside sds.proto).
 */
import * as grpc from '@grpc/grpc-js';
import { loadEnvoyProtos } from './envoy-protos.js';

const loaded = loadEnvoyProtos(
  ['envoy/service/secret/v3/sds.proto', 'envoy/extensions/transport_sockets/tls/v3/secret.proto'],
  { json: true },
) as unknown as {
  envoy: { service: { secret: { v3: { SecretDiscoveryService: grpc.ServiceClientConstructor } } } };
};

export const SECRET_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

/** A Secret as proto-loader unpacks it from an Any. */
export interface WireSecret {
  '@type': string;
  name: string;
  tls_certificate?: { certificate_chain?: { inline_bytes?: Buffer }; private_key?: { inline_bytes?: Buffer } };
}
export interface WireDeltaResponse {
  system_version_info?: string;
  resources?: Array<{ name: string; version: string; resource: WireSecret }>;
  removed_resources?: string[];
  type_url: string;
  nonce: string;
}
export interface WireSotwResponse {
  version_info: string;
  resources?: WireSecret[];
  type_url: string;
  nonce: string;
}

/** The chain and key PEM of a Secret, checking it is a tls_certificate of the right type. */
export function decodeSecret(secret: WireSecret): { name: string; chainPem: string; keyPem: string } {
  if (secret['@type'] !== SECRET_TYPE_URL) throw new Error(`unexpected Any type ${secret['@type']}`);
  const chain = secret.tls_certificate?.certificate_chain?.inline_bytes;
  const key = secret.tls_certificate?.private_key?.inline_bytes;
  if (!chain || !key) throw new Error(`secret ${secret.name} has no inline certificate_chain/private_key`);
  return { name: secret.name, chainPem: Buffer.from(chain).toString(), keyPem: Buffer.from(key).toString() };
}

/** Creates a client for `address` (host:port or unix:/path), insecure unless `credentials` are given (mTLS). */
export function sdsClient(
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  options?: grpc.ChannelOptions,
): grpc.Client {
  return new loaded.envoy.service.secret.v3.SecretDiscoveryService(address, credentials, options);
}

/** One bidi xDS stream: send requests, await responses one at a time in arrival order. */
export class XdsStream<Res> {
  private readonly received: Res[] = [];
  private waiters: Array<(r: Res) => void> = [];
  readonly status: Promise<grpc.StatusObject>;

  constructor(private readonly call: grpc.ClientDuplexStream<object, Res>) {
    call.on('data', (r: Res) => {
      const waiter = this.waiters.shift();
      if (waiter) waiter(r);
      else this.received.push(r);
    });
    call.on('error', () => {
      /* surfaced through status */
    });
    this.status = new Promise((resolve) => call.on('status', resolve));
  }

  send(request: object): this {
    this.call.write(request);
    return this;
  }

  /** The next response; rejects (instead of hanging the test) if none arrives within `ms`. */
  next(ms = 10_000): Promise<Res> {
    const ready = this.received.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no SDS response within ${ms} ms`));
      }, ms);
      const waiter = (r: Res) => {
        clearTimeout(timer);
        resolve(r);
      };
      this.waiters.push(waiter);
    });
  }

  /** Responses that arrived and were not taken by next(). */
  get unread(): number {
    return this.received.length;
  }

  end(): void {
    this.call.end();
  }

  cancel(): void {
    this.call.cancel();
  }
}

function metadataOf(entries: Record<string, string | string[]>): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(entries)) for (const one of [v].flat()) md.add(k, one);
  return md;
}

type Streaming = Record<string, (md: grpc.Metadata) => grpc.ClientDuplexStream<object, unknown>>;

/** Opens DeltaSecrets, as Envoy's on-demand selector does (one stream per SNI). */
export function openDelta(
  client: grpc.Client,
  metadata: Record<string, string | string[]> = {},
): XdsStream<WireDeltaResponse> {
  return new XdsStream(
    (client as unknown as Streaming).DeltaSecrets!(metadataOf(metadata)) as grpc.ClientDuplexStream<
      object,
      WireDeltaResponse
    >,
  );
}

/** Opens StreamSecrets (state of the world). */
export function openSotw(
  client: grpc.Client,
  metadata: Record<string, string | string[]> = {},
): XdsStream<WireSotwResponse> {
  return new XdsStream(
    (client as unknown as Streaming).StreamSecrets!(metadataOf(metadata)) as grpc.ClientDuplexStream<
      object,
      WireSotwResponse
    >,
  );
}

/** Calls the unary FetchSecrets; resolves with the error status or the response. */
export function fetchSecrets(
  client: grpc.Client,
  names: string[],
): Promise<{ code: number; response?: WireSotwResponse }> {
  const unary = (
    client as unknown as Record<
      string,
      (req: object, cb: (err: grpc.ServiceError | null, res?: WireSotwResponse) => void) => void
    >
  ).FetchSecrets!;
  return new Promise((resolve) => {
    unary.call(client, { resource_names: names, type_url: SECRET_TYPE_URL }, (err, res) =>
      resolve({ code: err ? err.code : 0, response: res }),
    );
  });
}
