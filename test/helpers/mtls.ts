/** mTLS material for tests, made with the openssl command line: a CA, a server leaf and client leaves. */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'pipe' });
}

export interface MtlsFiles {
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  client(name: string): { cert: string; key: string };
}

/** A CA named `name` in `dir`; `client(cn)` issues a clientAuth leaf whose CN and URI SAN are `cn`. */
export function makeMtls(dir: string, name = 'mtls'): MtlsFiles {
  const p = (f: string) => join(dir, `${name}-${f}`);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${name} CA`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.crt'),
  ]);
  const leaf = (file: string, cn: string, ext: string) => {
    writeFileSync(p(`${file}.ext`), ext);
    openssl([
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      p(`${file}.key`),
      '-out',
      p(`${file}.csr`),
    ]);
    openssl([
      'x509',
      '-req',
      '-in',
      p(`${file}.csr`),
      '-CA',
      p('ca.crt'),
      '-CAkey',
      p('ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      p(`${file}.ext`),
      '-out',
      p(`${file}.crt`),
    ]);
    return { cert: p(`${file}.crt`), key: p(`${file}.key`) };
  };
  const server = leaf(
    'server',
    'localhost',
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
  );
  return {
    ca: p('ca.crt'),
    serverCert: server.cert,
    serverKey: server.key,
    client: (cn) =>
      leaf(`client-${cn}`, cn, `subjectAltName=URI:spiffe://authproxy/sandbox/${cn}\nextendedKeyUsage=clientAuth\n`),
  };
}
