/** The `kyc` config section: keys, providers, workflows and the claims each workflow grants. */
import { secretRefSchema } from '../config/secret-ref-schema.js';
import type { SecretRef } from '../config/types.js';

export interface KycWorkflowConfig {
  provider: string;
  fallbacks: string[];
  routing: Array<{ when: string; provider: string }>;
  workflow_id: string;
  workflow_ids: Record<string, string>;
  claims: Record<string, string | ClaimSpec>;
  max_age_days: number;
  max_age?: string;
  expire_with_document: boolean;
  session_reuse_hours: number;
  callback_url?: string;
  application_name?: string;
  purpose?: string;
  retain_personal: Array<'first_name' | 'last_name' | 'date_of_birth'>;
}

/** A claim with its own lifetime. */
export interface ClaimSpec {
  when: string;
  max_age?: string;
  expire_with_document?: boolean;
}

export interface KycConfig {
  subject_key?: SecretRef;
  encryption_keys: Array<{ id: string; key: SecretRef }>;
  providers: Record<string, { type: string; [key: string]: unknown }>;
  workflows: Record<string, KycWorkflowConfig>;
  cache: { ttl_seconds: number; unverified_ttl_seconds: number; max_entries: number };
  webhook_tolerance_seconds: number;
  assurance_levels?: Array<{ name: string; claims: string[] }>;
  webhook_path: string;
  jwks_path: string;
  session_lease_ms: number;
  reconcile_interval_seconds: number;
  retention?: { history_days?: number; sessions_days?: number; webhook_events_days?: number; interval_seconds: number };
  assertion: { issuer: string; signing_key?: SecretRef; lifetime_seconds: number; cache_seconds: number };
}

const nameSchema = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' } as const;

export const kycSchema = {
  type: 'object',
  description:
    'KYC gating: verification providers, verification workflows, the claims they grant, and the keys protecting subject data. See docs/KYC.md.',
  properties: {
    subject_key: {
      ...secretRefSchema,
      description:
        'Key of the HMAC-SHA256 that pseudonymises subject ids before they are stored, logged or sent to a ' +
        'provider (at least 32 bytes). Omitted: a key is generated on first start and kept in the data ' +
        'directory (one instance only; required with a shared PostgreSQL store).',
    },
    encryption_keys: {
      type: 'array',
      default: [],
      description:
        'AES-256-GCM keys for personal data and webhook payloads at rest. The first encrypts, all decrypt ' +
        '(rotation: add a new key first; the re-encryption job then seals everything under it, after which the old ' +
        'key can go). Empty: a key is generated on ' +
        'first start and kept in the data directory.',
      items: {
        type: 'object',
        properties: {
          id: {
            type: 'string',
            pattern: '^[A-Za-z0-9_-]{1,32}$',
            description: 'Key id stored with every ciphertext, so the right key decrypts it.',
          },
          key: { ...secretRefSchema, description: '32 bytes as 64 hex characters or base64.' },
        },
        required: ['id', 'key'],
        additionalProperties: false,
      },
    },
    providers: {
      type: 'object',
      default: {},
      description:
        'Verification providers by name (the name is used in `POST /webhooks/<name>`). `type` selects the ' +
        "adapter (didit, veriff, onfido, sumsub, persona, sandbox); the other keys are the adapter's own (docs/PROVIDERS.md).",
      propertyNames: nameSchema,
      additionalProperties: {
        type: 'object',
        properties: {
          type: { type: 'string', description: 'Adapter type: didit, veriff, onfido, sumsub, persona or sandbox.' },
        },
        required: ['type'],
      },
    },
    workflows: {
      type: 'object',
      default: {},
      description:
        'Verification workflows by name: which provider runs them, and which claims an approved decision grants.',
      propertyNames: nameSchema,
      additionalProperties: {
        type: 'object',
        properties: {
          provider: { type: 'string', description: 'Name of the primary provider in kyc.providers.' },
          fallbacks: {
            type: 'array',
            items: { type: 'string' },
            uniqueItems: true,
            default: [],
            description:
              'Providers tried in order when the primary (or the routed provider) is unavailable: its breaker is ' +
              'open, or creating the session failed (timeout, network error, 5xx, 429). Subjects already verified are ' +
              'never affected. Each decision records the provider that made it.',
          },
          routing: {
            type: 'array',
            default: [],
            description:
              'Rules choosing the provider of a new session per request, first match wins (else the primary). ' +
              '`when` is CEL over `request` (headers (lower-case names), path, method, client_ip) and `bucket` ' +
              '(0-99, stable per subject), e.g. `request.headers["x-country"] == "DE"` or `bucket < 20`.',
            items: {
              type: 'object',
              properties: {
                when: { type: 'string', minLength: 1, description: 'CEL boolean expression.' },
                provider: { type: 'string', description: 'Provider in kyc.providers used when it matches.' },
              },
              required: ['when', 'provider'],
              additionalProperties: false,
            },
          },
          workflow_ids: {
            type: 'object',
            default: {},
            additionalProperties: { type: 'string', minLength: 1 },
            description:
              "The provider's own workflow id per provider name, where providers differ (Onfido workflow UUID, " +
              'Sumsub level, Persona template); `workflow_id` otherwise.',
          },
          workflow_id: {
            type: 'string',
            minLength: 1,
            description: "The provider's workflow id (Didit: the workflow UUID built in its console).",
          },
          claims: {
            type: 'object',
            minProperties: 1,
            propertyNames: { pattern: '^[a-z][a-z0-9_]*$' },
            additionalProperties: {
              oneOf: [
                { type: 'string', minLength: 1 },
                {
                  type: 'object',
                  properties: {
                    when: { type: 'string', minLength: 1, description: 'CEL expression granting the claim.' },
                    max_age: {
                      type: 'string',
                      pattern: '^\\d+(ms|s|m|h|d)$',
                      description:
                        'The claim lapses this long after the decision (e.g. 90d), before the workflow does.',
                    },
                    expire_with_document: {
                      type: 'boolean',
                      description: "The claim lapses when the verified document expires (the provider's expiry date).",
                    },
                  },
                  required: ['when'],
                  additionalProperties: false,
                },
              ],
            },
            description:
              'Claim name to CEL expression over the approved decision: `facts` (flat provider facts, e.g. ' +
              'facts.aml == "Approved") and `personal` (first_name, last_name, date_of_birth); ' +
              '`age(personal.date_of_birth)` gives whole years. `"true"` grants the claim on approval. An object ' +
              '`{when, max_age, expire_with_document}` gives the claim its own lifetime: a lapsed claim challenges the ' +
              'user with a re-verification session.',
          },
          max_age: {
            type: 'string',
            pattern: '^\\d+(ms|s|m|h|d)$',
            description:
              'Re-verification is required this long after approval (e.g. 365d); overrides max_age_days. Expiry is ' +
              'judged by every instance from the stored decision time, so all instances challenge the user at once.',
          },
          expire_with_document: {
            type: 'boolean',
            default: false,
            description:
              "The verification lapses when the verified document expires (the provider's expiry date, fact " +
              '`document_expires`), if that comes before max_age.',
          },
          max_age_days: {
            type: 'integer',
            minimum: 1,
            default: 365,
            description: 'Re-verification is required this many days after approval.',
          },
          session_reuse_hours: {
            type: 'integer',
            minimum: 1,
            default: 24,
            description:
              'An unfinished verification session is offered again for this long before a new one is created.',
          },
          callback_url: {
            type: 'string',
            pattern: '^https?://',
            description: "Where the user's browser returns after verifying.",
          },
          application_name: {
            type: 'string',
            minLength: 1,
            maxLength: 100,
            description:
              'The application asking for the verification, shown on the hosted page and on the pages browsers get ' +
              '(sent to the provider as session metadata `application`).',
          },
          purpose: {
            type: 'string',
            minLength: 1,
            maxLength: 300,
            description: 'Why it asks, shown on the hosted page (session metadata `purpose`).',
          },
          retain_personal: {
            type: 'array',
            items: { enum: ['first_name', 'last_name', 'date_of_birth'] },
            uniqueItems: true,
            default: [],
            description:
              'Personal fields kept (encrypted) after a decision, only when something downstream needs them. Default: none.',
          },
        },
        required: ['provider', 'workflow_id', 'claims'],
        additionalProperties: false,
      },
    },
    cache: {
      type: 'object',
      default: {},
      description:
        'In-memory cache of verification state per subject. Status changes drop entries at once (and on every instance when `redis` is configured).',
      properties: {
        ttl_seconds: {
          type: 'integer',
          minimum: 1,
          default: 60,
          description:
            "How long a verified subject's state is served from memory before it is re-read (never past the " +
            "verification's expiry). While the store cannot be reached it is served longer, up to " +
            'store.stale_period_seconds, marked stale.',
        },
        unverified_ttl_seconds: {
          type: 'integer',
          minimum: 1,
          default: 5,
          description: "How long an unverified or pending subject's state is served from memory.",
        },
        max_entries: {
          type: 'integer',
          minimum: 100,
          default: 100000,
          description: 'Subjects kept in memory at most (oldest dropped first).',
        },
      },
      additionalProperties: false,
    },
    assurance_levels: {
      type: 'array',
      default: [],
      description:
        'Identity assurance levels, lowest first, each reached by holding all its claims (e.g. `substantial`: ' +
        '[kyc_full]; `high`: [kyc_full, liveness]). A kyc-gate rule may require a level (step-up); the upstream ' +
        'assertion carries the highest level reached as `acr`.',
      items: {
        type: 'object',
        properties: {
          name: {
            type: 'string',
            pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]*$',
            description: 'Level name (the `acr` value).',
          },
          claims: {
            type: 'array',
            items: { type: 'string', pattern: '^[a-z][a-z0-9_]*$' },
            minItems: 1,
            uniqueItems: true,
            description: 'Claims that together reach this level.',
          },
        },
        required: ['name', 'claims'],
        additionalProperties: false,
      },
    },
    webhook_tolerance_seconds: {
      type: 'integer',
      minimum: 1,
      maximum: 3600,
      default: 300,
      description: 'Webhooks whose signed timestamp is older (or further in the future) than this are refused.',
    },
    webhook_path: {
      type: 'string',
      pattern: '^/.*:provider',
      default: '/webhooks/:provider',
      description: 'Path of the built-in webhook route.',
    },
    jwks_path: {
      type: 'string',
      pattern: '^/',
      default: '/.well-known/jwks.json',
      description: 'Path of the built-in route serving the assertion public keys.',
    },
    session_lease_ms: {
      type: 'integer',
      minimum: 100,
      default: 15000,
      description:
        'How long one instance may take to create a provider session before another may try. The instance ' +
        "that holds it takes its own leftover lease (a failed attempt's) over at once.",
    },
    reconcile_interval_seconds: {
      type: 'integer',
      minimum: 1,
      default: 30,
      description: 'How often webhook events not yet applied (provider down, unknown session) are retried.',
    },
    retention: {
      type: 'object',
      default: {},
      description:
        'How long verification history is kept, enforced by a job every instance runs (idempotent deletes). ' +
        'Unset periods keep rows until the subject is erased.',
      properties: {
        history_days: {
          type: 'integer',
          minimum: 1,
          description: 'Recorded request history (kyc_history, for rule sums) older than this is deleted.',
        },
        sessions_days: {
          type: 'integer',
          minimum: 1,
          description:
            'Provider sessions older than this are forgotten, except the one a verification record still points at.',
        },
        webhook_events_days: {
          type: 'integer',
          minimum: 1,
          description:
            'Applied webhook events (their ids and outcomes; payloads are dropped on applying) older than this are deleted.',
        },
        interval_seconds: {
          type: 'integer',
          minimum: 60,
          default: 3600,
          description: 'How often the retention job runs.',
        },
      },
      additionalProperties: false,
    },
    assertion: {
      type: 'object',
      default: {},
      description: 'The signed assertion (compact JWS) sent upstream in `x-kycgate-assertion`.',
      properties: {
        issuer: { type: 'string', default: 'kycgate', description: '`iss` of the assertion.' },
        signing_key: {
          ...secretRefSchema,
          description:
            'PKCS#8 PEM private key (EC P-256 → ES256, Ed25519 → EdDSA). Omitted: generated on first start and kept in the data directory.',
        },
        lifetime_seconds: {
          type: 'integer',
          minimum: 5,
          maximum: 3600,
          default: 60,
          description: 'Validity of an assertion.',
        },
        cache_seconds: {
          type: 'integer',
          minimum: 0,
          default: 30,
          description:
            'How long a signed assertion is reused for the same subject and upstream (must be below lifetime_seconds).',
        },
      },
      additionalProperties: false,
    },
  },
  additionalProperties: false,
} as const;
