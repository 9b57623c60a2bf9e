import { describe, expect, it } from 'vitest';
import { AuthProxyError } from '../../src/errors.js';
import type { LoadedSources } from '../../src/config/watch.js';
import type { CompiledPolicy } from '../../src/policy/compiled.js';
import type { SandboxStore, StoredSandbox } from '../../src/sandboxes/store.js';
import {
  cloudAwareStore,
  CloudModules,
  deferredFileApply,
  rawConfigNeeds,
  type CloudFactories,
} from '../../src/serve/cloud-loader.js';
import { captureLogs } from '../helpers/logs.js';

const handler = { handle: () => ({ kind: 'immediate', status: 200, body: '' }) as const };

function factories(fail: { aws?: boolean; gcp?: boolean } = {}, calls: string[] = []): CloudFactories {
  return {
    aws: async (roles) => {
      calls.push(roles ? 'aws+roles' : 'aws');
      if (fail.aws) throw new Error('Cannot find package @aws-sdk/client-sts');
      return handler as never;
    },
    gcp: async () => {
      calls.push('gcp');
      if (fail.gcp) throw new Error('boom');
      return handler as never;
    },
    azure: async () => {
      calls.push('azure');
      return handler as never;
    },
  };
}

const loaded = (aws: boolean, gcp = false): LoadedSources => ({
  file: {
    default: {
      aws: aws ? { auth: { kind: 'static' } } : undefined,
      gcp: gcp ? {} : undefined,
    } as unknown as CompiledPolicy,
    sandboxes: new Map(),
  },
  secrets: new Map(),
  fingerprint: String(Math.random()),
});

describe('CloudModules', () => {
  it('loads a provider once, only when asked, and shares a load in flight', async () => {
    const calls: string[] = [];
    const cloud = new CloudModules(factories({}, calls));
    expect(cloud.aws).toBeUndefined();
    expect(cloud.ready(new Set())).toBe(true);
    await Promise.all([cloud.ensure(new Set(['aws'])), cloud.ensure(new Set(['aws']))]);
    await cloud.ensure(new Set(['aws']));
    expect(calls).toEqual(['aws']);
    expect(cloud.aws).toBe(handler);
    expect(cloud.gcp).toBeUndefined();
    expect(cloud.ready(new Set(['aws']))).toBe(true);
    expect(cloud.ready(new Set(['aws', 'gcp']))).toBe(false);
  });

  it('builds the signer with roles only for role rules, and once for both needs', async () => {
    const calls: string[] = [];
    const cloud = new CloudModules(factories({}, calls));
    await cloud.ensure(new Set(['aws']));
    expect(cloud.ready(new Set(['aws', 'aws_role']))).toBe(false);
    await cloud.ensure(new Set(['aws', 'aws_role']));
    expect(cloud.ready(new Set(['aws', 'aws_role']))).toBe(true);
    await cloud.ensure(new Set(['aws', 'aws_role']));
    expect(calls).toEqual(['aws', 'aws+roles']);
    const fresh: string[] = [];
    await new CloudModules(factories({}, fresh)).ensure(new Set(['aws', 'aws_role']));
    expect(fresh).toEqual(['aws+roles']);
  });

  it('a module that cannot load is a one-line config error naming the provider, and is tried again later', async () => {
    const calls: string[] = [];
    const cloud = new CloudModules(factories({ aws: true }, calls));
    const err = await cloud.ensure(new Set(['aws'])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthProxyError);
    expect((err as Error).message).toMatch(/^AWS support could not be loaded \(Cannot find package/);
    expect(cloud.aws).toBeUndefined();
    await expect(cloud.ensure(new Set(['aws']))).rejects.toThrow(AuthProxyError);
    expect(calls).toEqual(['aws', 'aws']);
  });
});

describe('rawConfigNeeds', () => {
  it('names every aws / gcp rule type of a stored config, whatever else it holds', () => {
    expect(
      [...rawConfigNeeds({ rules: [{ type: 'gcp' }, { name: 'x' }, { type: 'aws', enabled: false }] })].sort(),
    ).toEqual(['aws', 'gcp']);
    expect(
      [...rawConfigNeeds({ rules: [{ type: 'aws', aws: { role_arn: 'arn:aws:iam::1:role/r' } }] })].sort(),
    ).toEqual(['aws', 'aws_role']);
    for (const junk of [undefined, null, 'x', {}, { rules: 'no' }, { rules: [null, 1] }])
      expect(rawConfigNeeds(junk).size).toBe(0);
  });
});

describe('cloudAwareStore', () => {
  it('answers a stored config only once its provider loaded; rejects when it cannot load', async () => {
    const entry = { stamp: 's', config: { rules: [{ type: 'aws' }] } } as unknown as StoredSandbox;
    const store = { get: async () => entry } as unknown as SandboxStore;
    const good = new CloudModules(factories());
    expect(await cloudAwareStore(store, good).get('a')).toBe(entry);
    expect(good.aws).toBe(handler);
    await expect(cloudAwareStore(store, new CloudModules(factories({ aws: true }))).get('a')).rejects.toThrow(
      /AWS support could not be loaded/,
    );
  });
});

describe('deferredFileApply', () => {
  it('applies at once when nothing is missing, as before', () => {
    const applied: LoadedSources[] = [];
    const counted: string[] = [];
    const reloads = deferredFileApply(
      new CloudModules(factories()),
      (l) => applied.push(l),
      (r) => counted.push(r),
      captureLogs().log,
    );
    const l = loaded(false);
    expect(reloads.apply(l)).toBe('applied');
    expect(applied).toEqual([l]);
    expect(counted).toEqual([]); // the watcher counts (and logs) what is applied at once
  });

  it('applies a reload that needs a provider whole once it loaded, counted then', async () => {
    const applied: LoadedSources[] = [];
    const counted: string[] = [];
    const cloud = new CloudModules(factories());
    const reloads = deferredFileApply(
      cloud,
      (l) => applied.push(l),
      (r) => counted.push(r),
      captureLogs().log,
    );
    const l = loaded(true, true);
    expect(reloads.apply(l)).toBe('deferred');
    expect(applied).toEqual([]);
    expect(counted).toEqual([]);
    await cloud.ensure(new Set(['aws', 'gcp']));
    await new Promise((r) => setImmediate(r));
    expect(applied).toEqual([l]);
    expect(counted).toEqual(['ok']);
  });

  it('keeps the last good config when the provider cannot load', async () => {
    const applied: LoadedSources[] = [];
    const counted: string[] = [];
    const logs = captureLogs();
    const reloads = deferredFileApply(
      new CloudModules(factories({ gcp: true })),
      (l) => applied.push(l),
      (r) => counted.push(r),
      logs.log,
    );
    expect(reloads.apply(loaded(false, true))).toBe('deferred');
    await new Promise((r) => setTimeout(r, 10));
    expect(applied).toEqual([]);
    expect(counted).toEqual(['failed']);
    expect(logs.text()).toMatch(
      /config reload rejected, keeping the last good config: Google Cloud support could not be loaded/,
    );
  });

  it('a newer reload wins over one still waiting for its provider', async () => {
    const applied: LoadedSources[] = [];
    const reloads = deferredFileApply(
      new CloudModules(factories()),
      (l) => applied.push(l),
      () => {},
      captureLogs().log,
    );
    const older = loaded(true);
    const newer = loaded(false);
    reloads.apply(older);
    reloads.apply(newer);
    await new Promise((r) => setTimeout(r, 10));
    expect(applied).toEqual([newer]);
  });
});
