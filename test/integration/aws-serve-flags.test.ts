/** `authproxy serve`'s AWS flags are checked before anything starts, with one line naming the flag. */
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

describe('serve --aws-sts-endpoint / --aws-region', () => {
  const serve = (extra: string[], env: Record<string, string> = {}) =>
    runCli(['serve', '--config', '/nonexistent.yaml', '--listen', 'unix:/tmp/authproxy-aws-flags.sock', ...extra], {
      env,
    });

  it('refuses a non-https STS endpoint and a malformed region', () => {
    const http = serve(['--aws-sts-endpoint', 'http://sts.us-east-1.amazonaws.com']);
    expect(http.status).not.toBe(0);
    expect(http.stderr).toContain('--aws-sts-endpoint: must be an https:// URL');
    const env = serve([], { AUTHPROXY_AWS_STS_ENDPOINT: 'not a url' });
    expect(env.stderr).toContain('--aws-sts-endpoint');
    const region = serve(['--aws-region', 'mars-1']);
    expect(region.stderr).toContain('--aws-region: "mars-1" is not an AWS region');
  });

  it('accepts good values (and then fails on the missing config, not on them)', () => {
    const ok = serve(['--aws-sts-endpoint', 'https://sts.eu-west-1.amazonaws.com', '--aws-region', 'eu-west-1']);
    expect(ok.status).not.toBe(0);
    expect(ok.stderr).not.toMatch(/--aws-/);
    expect(ok.stderr).toContain('/nonexistent.yaml');
  });
});
