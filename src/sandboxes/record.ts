import { createHmac, timingSafeEqual } from 'node:crypto';
import { AuthProxyError } from '../errors.js';
import type { ProxyConfig } from '../config/schema.js';
import { TENANT_ID, type IdentityFields } from '../contracts/identity.js';

/**
 * Where a stored record sits in the history of writes: `epoch` is the time the store's data set began
 * (a Redis that lost its data starts a later one) and `seq` a counter over every write of that data set,
 * so a later write always compares greater, even after the sandbox was deleted and created again.
 */
export interface RecordOrder {
  readonly epoch: number;
  readonly seq: number;
}

/** Whether `a` was written after `b`. */
export function isNewer(a: RecordOrder, b: RecordOrder): boolean {
  return a.epoch > b.epoch || (a.epoch === b.epoch && a.seq > b.seq);
}

/** One stored sandbox record, decoded. */
export interface DecodedRecord {
  readonly stamp: string;
  readonly version: number;
  readonly updatedAt: number;
  readonly config: ProxyConfig;
  readonly tenantId?: string;
  readonly organizationId?: string;
  /** Undefined for records written before the order was authenticated (their history is unknown). */
  readonly order?: RecordOrder;
}

/** What a write puts into a record. */
export interface RecordFields {
  readonly stamp: string;
  readonly updatedAt: number;
  readonly order: RecordOrder;
  readonly identity: IdentityFields;
  readonly config: ProxyConfig;
}

const V2 = 'v2.';

function hmac(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text).digest('base64url');
}

/**
 * The stored form of a sandbox's config:
 * `stamp\nupdatedAt\nv2.MAC\nepoch.seq\nrecord JSON\nconfig JSON` (JSON.stringify never writes a raw
 * newline). The MAC (HMAC-SHA256 with the replicas' shared key; `-` without one) covers the sandbox id
 * and every other line, so neither the config, the tenant, the stamp nor the order can be changed or
 * moved to another sandbox, and an older record can't be passed off as a newer one.
 */
export function encodeRecord(macKey: Buffer | undefined, id: string, f: RecordFields): string {
  const meta: { tenant_id?: string; organization_id?: string } = {};
  if (f.identity.tenantId !== undefined) meta.tenant_id = f.identity.tenantId;
  if (f.identity.organizationId !== undefined) meta.organization_id = f.identity.organizationId;
  const rest = `${f.order.epoch}.${f.order.seq}\n${JSON.stringify(meta)}\n${JSON.stringify(f.config)}`;
  const mac = macKey ? hmac(macKey, `v2\n${id}\n${f.stamp}\n${f.updatedAt}\n${rest}`) : '-';
  return `${f.stamp}\n${f.updatedAt}\n${V2}${mac}\n${rest}`;
}

function malformed(id: string): AuthProxyError {
  return new AuthProxyError('config_invalid', `sandbox ${id}: stored config is malformed`);
}

function verify(macKey: Buffer | undefined, id: string, given: string, expected: () => string): void {
  if (!macKey) return;
  const want = Buffer.from(expected());
  if (given.length !== want.length || !timingSafeEqual(Buffer.from(given), want)) {
    throw new AuthProxyError(
      'config_invalid',
      `sandbox ${id}: stored config failed authentication (written without this deployment's key, or altered)`,
    );
  }
}

/** Splits `raw` after its first `n` newlines; undefined when it has fewer. */
function lines(raw: string, n: number): string[] | undefined {
  const out: string[] = [];
  let from = 0;
  for (let i = 0; i < n; i++) {
    const at = raw.indexOf('\n', from);
    if (at < 0) return undefined;
    out.push(raw.slice(from, at));
    from = at + 1;
  }
  out.push(raw.slice(from));
  return out;
}

/**
 * Decodes and authenticates a stored record (see `encodeRecord`). Records of the earlier form
 * (`stamp\nupdatedAt\nMAC\n[record JSON\n]config JSON`, the MAC over the id and the JSON only) are
 * still read, without an order: the registry accepts them only while it holds nothing newer.
 */
export function decodeRecord(macKey: Buffer | undefined, id: string, raw: string): DecodedRecord {
  const head = lines(raw, 3);
  if (!head) throw malformed(id);
  const [stamp, updated, mac, rest] = head as [string, string, string, string];
  const base = { stamp, version: parseInt(stamp, 10), updatedAt: Number(updated) };
  if (mac.startsWith(V2)) {
    verify(macKey, id, mac.slice(V2.length), () => hmac(macKey!, `v2\n${id}\n${stamp}\n${updated}\n${rest}`));
    const parts = lines(rest, 2);
    const order = /^(\d{1,16})\.(\d{1,16})$/.exec(parts?.[0] ?? '');
    if (!parts || !order) throw malformed(id);
    return {
      ...base,
      order: { epoch: Number(order[1]), seq: Number(order[2]) },
      ...parseMeta(id, parts[1]!),
      config: JSON.parse(parts[2]!) as ProxyConfig,
    };
  }
  verify(macKey, id, mac, () => hmac(macKey!, `${id}\n${rest}`));
  const nl = rest.indexOf('\n');
  const config = JSON.parse(nl < 0 ? rest : rest.slice(nl + 1)) as ProxyConfig;
  return nl < 0 ? { ...base, config } : { ...base, ...parseMeta(id, rest.slice(0, nl)), config };
}

/** The record line of a stored sandbox: its tenant and organization, each checked like an API input. */
function parseMeta(id: string, line: string): IdentityFields {
  const meta = JSON.parse(line) as { tenant_id?: unknown; organization_id?: unknown };
  const out: { tenantId?: string; organizationId?: string } = {};
  for (const [key, field] of [
    ['tenant_id', 'tenantId'],
    ['organization_id', 'organizationId'],
  ] as const) {
    const value = meta[key];
    if (value === undefined) continue;
    if (typeof value !== 'string' || !TENANT_ID.test(value))
      throw new AuthProxyError('config_invalid', `sandbox ${id}: stored ${key} is malformed`);
    out[field] = value;
  }
  return out;
}
