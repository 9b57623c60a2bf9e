import type { AwsRule, GcpRule } from './provider-schema.js';
import type { AzureRule } from './azure-schema.js';

/** A rule of a cloud provider type (`aws`, `gcp`, `azure`). */
export type ProviderRule = AwsRule | GcpRule | AzureRule;
