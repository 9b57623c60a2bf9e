/**
 * The one place that loads @peculiar/x509. Its 2.x builds depend on tsyringe, which needs a Reflect
 * metadata polyfill installed before the library is evaluated, and the library must be pointed at
 * Node's WebCrypto. Importing x509 only through this module makes both happen first, exactly once.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** Node's WebCrypto `subtle`, typed for @peculiar/x509 (whose types come from the DOM lib). */
export const subtle = webcrypto.subtle as unknown as SubtleCrypto;

export { x509 };
