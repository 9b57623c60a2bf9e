import { AuthProxyApiError, type AuthProxyClient } from './client.js';
import { opaqueSecret } from './headers.js';
import type { ProxyConfigPatch, ProxyConfigWrite, SandboxConfigResponse } from './types.js';

/** Name of the rule that authenticates GitHub API calls (`api.github.com`, Bearer). */
export const GITHUB_API_RULE = 'github-api';
/** Name of the rule that authenticates git over HTTPS (`github.com`, `*.github.com`, Basic). */
export const GITHUB_GIT_RULE = 'github-git';

type RuleWrite = NonNullable<ProxyConfigWrite['rules']>[number];
type RulePatch = NonNullable<ProxyConfigPatch['rules']>[number];

function base64(text: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/**
 * The two rules that give a sandbox GitHub access with one token (a GitHub App installation token or a
 * PAT), both opaque so the token is sealed at rest and never read back:
 * - `github-api`: `api.github.com`, `Authorization: Bearer <token>`, with `GH_TOKEN`/`GITHUB_TOKEN`
 *   placeholders so `gh` and Octokit-based tools send requests at all;
 * - `github-git`: `github.com` and `*.github.com`, `Authorization: Basic base64("x-access-token:<token>")`,
 *   which is what git over HTTPS sends.
 * Order matters (the first matching rule wins and `*.github.com` also matches `api.github.com`): keep
 * `github-api` first, as `configureGithubProxy` does.
 */
export function githubProxyRules(token: string): [RuleWrite, RuleWrite] {
  if (!token || /[\r\n\0\s]/.test(token))
    throw new TypeError('githubProxyRules: the token must be non-empty, without whitespace');
  return [
    {
      name: GITHUB_API_RULE,
      match_hosts: ['api.github.com'],
      headers: [{ name: 'Authorization', ...opaqueSecret(`Bearer ${token}`) }],
      env_vars: { GH_TOKEN: 'proxy-injected', GITHUB_TOKEN: 'proxy-injected' },
    },
    {
      name: GITHUB_GIT_RULE,
      match_hosts: ['github.com', '*.github.com'],
      headers: [{ name: 'Authorization', ...opaqueSecret(`Basic ${base64(`x-access-token:${token}`)}`) }],
    },
  ];
}

/**
 * Puts the two GitHub rules into a sandbox's rules: rules with the same names are replaced, and the pair
 * goes where the first of them was (or in front, when neither existed, so it wins for GitHub hosts).
 */
export function mergeGithubRules(rules: readonly RulePatch[], github: readonly RuleWrite[]): RulePatch[] {
  const names = new Set(github.map((r) => r.name));
  const at = rules.findIndex((r) => names.has(r.name));
  const others = rules.filter((r) => !names.has(r.name));
  const insertAt = at < 0 ? 0 : rules.slice(0, at).filter((r) => !names.has(r.name)).length;
  return [...others.slice(0, insertAt), ...github, ...others.slice(insertAt)];
}

/**
 * Gives a sandbox GitHub access with `token`, or refreshes it: the call to make before each run with a
 * fresh (short-lived) GitHub App installation token. Reads the sandbox's config and PATCHes it back with
 * the GitHub rules merged in; every other opaque header goes back without a value, so the server keeps
 * its stored value. Creates the config (PUT) when the sandbox has none.
 *
 * The PATCH names the version it read (If-Match), so a change another writer makes in between is never
 * overwritten: the read-merge-write is done again (up to `attempts` times).
 */
export async function configureGithubProxy(
  client: AuthProxyClient,
  sandboxId: string,
  token: string,
  attempts = 5,
): Promise<SandboxConfigResponse> {
  const github = githubProxyRules(token);
  for (let attempt = 1; ; attempt++) {
    try {
      let current: SandboxConfigResponse;
      try {
        current = await client.get(sandboxId);
      } catch (err) {
        if (err instanceof AuthProxyApiError && err.status === 404)
          return await client.create(sandboxId, { rules: github }, { ifAbsent: true });
        throw err;
      }
      const config: ProxyConfigPatch = current.proxy_config;
      return await client.patch(
        sandboxId,
        { ...config, rules: mergeGithubRules(config.rules ?? [], github) },
        { ifMatch: current.etag },
      );
    } catch (err) {
      const conflict = err instanceof AuthProxyApiError && (err.status === 409 || err.status === 412);
      if (!conflict || attempt >= attempts) throw err;
    }
  }
}
