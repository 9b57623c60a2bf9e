/**
 * Which hosts the cloud provider rules cover, as pure functions of the hostname: AWS service endpoints
 * (`type: aws`) and Google APIs (`type: gcp`). Nothing else under amazonaws.com or google.com is covered,
 * so a provider credential never goes to a host that merely sits under the provider's domain.
 */

/** What an AWS hostname says about the request: the service its endpoint serves and the region, if named. */
export interface AwsEndpoint {
  readonly service: string;
  /** Undefined for global endpoints (`iam.amazonaws.com`, `s3.amazonaws.com`). */
  readonly region: string | undefined;
  /** For S3 virtual-hosted style: the bucket named in the host. */
  readonly bucket?: string;
  readonly fips: boolean;
  readonly dualstack: boolean;
}

const REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/;
const SERVICE = /^[a-z][a-z0-9-]{0,62}$/;
const SUFFIXES = ['.amazonaws.com', '.amazonaws.com.cn'];

/** `s3`, `s3-fips`, or the legacy `s3-<region>` form. */
function s3Label(label: string): { fips: boolean; region?: string } | undefined {
  if (label === 's3') return { fips: false };
  if (label === 's3-fips') return { fips: true };
  if (label.startsWith('s3-') && REGION.test(label.slice(3))) return { fips: false, region: label.slice(3) };
  return undefined;
}

/**
 * Classifies a lower-cased hostname as an AWS endpoint: `<service>.<region>.amazonaws.com`,
 * `<service>.amazonaws.com` (global), `-fips` and `dualstack` forms, and S3 virtual-hosted buckets
 * (`bucket.s3.<region>.amazonaws.com`, `bucket.s3.amazonaws.com`, `bucket.s3-<region>.amazonaws.com`).
 * Returns undefined for everything else, including hosts with extra labels such as API Gateway ids.
 */
export function awsEndpoint(host: string): AwsEndpoint | undefined {
  const suffix = SUFFIXES.find((s) => host.endsWith(s));
  if (!suffix) return undefined;
  const labels = host.slice(0, -suffix.length).split('.');
  if (labels.some((l) => l === '')) return undefined;
  let region: string | undefined;
  if (REGION.test(labels[labels.length - 1]!)) region = labels.pop();
  let dualstack = false;
  if (labels[labels.length - 1] === 'dualstack') {
    dualstack = true;
    labels.pop();
  }
  const last = labels[labels.length - 1];
  if (last === undefined) return undefined;
  const s3 = s3Label(last);
  if (s3) {
    if (s3.region && region) return undefined;
    const bucket = labels.slice(0, -1).join('.');
    return { service: 's3', region: s3.region ?? region, fips: s3.fips, dualstack, ...(bucket ? { bucket } : {}) };
  }
  if (labels.length !== 1 || !SERVICE.test(last)) return undefined;
  const fips = last.endsWith('-fips');
  return { service: fips ? last.slice(0, -5) : last, region, fips, dualstack };
}

/** Google APIs: `googleapis.com` and every name below it; nothing under google.com. */
export function isGoogleApisHost(host: string): boolean {
  return host === 'googleapis.com' || host.endsWith('.googleapis.com');
}
