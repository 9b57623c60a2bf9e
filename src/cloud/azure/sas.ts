import { splitPath } from './shared-key.js';

/**
 * The query parameters that make up a shared access signature (account, service and user delegation SAS,
 * with the response-header overrides a service SAS signs). A sandbox's own SAS, or any part of one, is
 * removed before the configured token is appended, so the request carries exactly one SAS: the real one.
 */
export const SAS_PARAMETERS = new Set([
  'sv',
  'ss',
  'srt',
  'sp',
  'se',
  'st',
  'spr',
  'sip',
  'si',
  'sr',
  'sig',
  'sdd',
  'ses',
  'skoid',
  'sktid',
  'skt',
  'ske',
  'sks',
  'skv',
  'skdutid',
  'saoid',
  'suoid',
  'scid',
  'sduoid',
  'rscc',
  'rscd',
  'rsce',
  'rscl',
  'rsct',
]);

/** A parameter name as the service reads it (decoded, lower-case); a broken escape is compared as written. */
function parameterName(pair: string): string {
  const eq = pair.indexOf('=');
  const raw = eq < 0 ? pair : pair.slice(0, eq);
  try {
    return decodeURIComponent(raw).toLowerCase();
  } catch {
    return raw.toLowerCase();
  }
}

/**
 * The `:path` to send: the sandbox's path and query byte for byte, without any SAS parameter, with the
 * configured token's parameters (`sv=...&sig=...`, as configured) appended.
 */
export function withSas(rawPath: string, token: string): string {
  const { path, query } = splitPath(rawPath);
  const kept = query.split('&').filter((pair) => pair !== '' && !SAS_PARAMETERS.has(parameterName(pair)));
  return `${path}?${[...kept, token].join('&')}`;
}
