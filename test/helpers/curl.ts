/** curl through a sidecar's forward proxy, as sandbox code would run it; shared by the e2e tests. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Runs `curl -x proxy --cacert ca ARGS...` and returns the status and body; never throws on HTTP errors
 * (a transport failure is status 0 with whatever body came).
 */
export async function curlViaProxy(
  proxyUrl: string,
  caFile: string,
  args: string[],
): Promise<{ status: number; body: string }> {
  const { stdout } = await run('curl', ['-sS', '-x', proxyUrl, '--cacert', caFile, '-w', '\n%{http_code}', ...args], {
    maxBuffer: 64 << 20,
  }).catch((e: { stdout?: string }) => ({ stdout: `${e.stdout ?? ''}\n000` }));
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}
