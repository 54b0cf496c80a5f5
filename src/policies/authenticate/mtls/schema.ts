/** Config of the `mtls` authenticator (also the body of the `client-certificate` policy). */
import { trustDomainsSchema } from '../../../workload-identity/schema.js';

export interface MtlsConsumerRule {
  name: string;
  spiffe_id?: string;
  trust_domain?: string;
  dns?: string;
  subject?: string;
  fingerprint?: string;
}

export interface MtlsConfig {
  trust_domains?: Array<{ name: string; bundle: string }>;
  client_ca?: string[];
  consumers: MtlsConsumerRule[];
  allow_unmapped: boolean;
}

const routeTrustDomainsSchema = trustDomainsSchema(
  'SPIFFE trust domains (with their bundles) this route accepts X509-SVIDs from. When neither this nor ' +
    "client_ca is set, the listener's client_ca / trust_domains are used.",
  {
    name: 'Trust domain name, e.g. example.org.',
    bundle: 'Bundle file: PEM CA certificates or a SPIFFE bundle (JWK Set); reloaded when it changes.',
  },
);

export const mtlsProperties = {
  trust_domains: routeTrustDomainsSchema,
  client_ca: {
    type: 'array',
    items: { type: 'string', minLength: 1 },
    description:
      'PEM files of CAs for plain (non-SPIFFE) client certificates on this route; reloaded when they change.',
  },
  consumers: {
    type: 'array',
    default: [],
    description:
      'Maps a validated certificate to a consumer. Each rule has a name and exactly one selector; the most ' +
      'specific match wins: spiffe_id, fingerprint, dns, subject, then trust_domain.',
    items: {
      type: 'object',
      properties: {
        name: { type: 'string', minLength: 1, description: 'Consumer name set on the identity.' },
        spiffe_id: {
          type: 'string',
          minLength: 1,
          description: 'Exact SPIFFE ID, e.g. spiffe://example.org/ns/payments/sa/api.',
        },
        trust_domain: { type: 'string', minLength: 1, description: 'Any SVID of this trust domain.' },
        dns: { type: 'string', minLength: 1, description: 'A DNS SAN of the certificate (case-insensitive).' },
        subject: {
          type: 'string',
          minLength: 1,
          description: 'Exact subject DN as RFC 4514-style text, e.g. "CN=payments, O=Example".',
        },
        fingerprint: {
          type: 'string',
          pattern: '^[0-9a-fA-F:]{64,95}$',
          description: 'SHA-256 fingerprint of the certificate (hex, colons allowed).',
        },
      },
      required: ['name'],
      minProperties: 2,
      maxProperties: 2,
      additionalProperties: false,
    },
  },
  allow_unmapped: {
    type: 'boolean',
    default: false,
    description:
      'Accept a valid certificate that no consumer rule matches (identity without consumer). Default: refuse it.',
  },
} as const;

export const mtlsSchema = {
  type: 'object',
  properties: mtlsProperties,
  additionalProperties: false,
} as const;
