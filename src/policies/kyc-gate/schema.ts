/** Config of the kyc-gate policy. */
export interface SubjectSourceConfig {
  from: 'jwt_claim' | 'consumer' | 'spiffe_id' | 'cert_fingerprint' | 'header';
  claim: string;
  header?: string;
  consumers: string[];
  trust_unauthenticated_header: boolean;
  namespace: string;
}

export interface GateRuleConfig {
  name: string;
  when?: string;
  action: 'allow' | 'deny' | 'require' | 'reroute';
  claims?: string[];
  level?: string;
  workflow?: string;
  upstream?: string;
  connect_timeout_ms: number;
}

export interface KycGateConfig {
  subject: SubjectSourceConfig;
  workflow?: string;
  required_claims: string[];
  rules: GateRuleConfig[];
  record_history: string[];
  pending_retry_after_seconds: number;
  redirect_browsers: boolean;
}

const claimList = {
  type: 'array',
  items: { type: 'string', pattern: '^[a-z][a-z0-9_]*$' },
  uniqueItems: true,
} as const;

export const kycGateSchema = {
  type: 'object',
  properties: {
    subject: {
      type: 'object',
      description:
        "Where the end user's identity comes from. The raw id is pseudonymised (keyed HMAC) before it is stored, logged or sent anywhere.",
      properties: {
        from: {
          enum: ['jwt_claim', 'consumer', 'spiffe_id', 'cert_fingerprint', 'header'],
          description:
            'jwt_claim: a claim of the verified token (ctx.identity.claims). consumer: the authenticated ' +
            'consumer. spiffe_id / cert_fingerprint: the mTLS client identity. header: a header, trusted only ' +
            'from authenticated consumers (a backend acting for its user) unless trust_unauthenticated_header.',
        },
        claim: { type: 'string', default: 'sub', description: 'Claim holding the user id (from: jwt_claim).' },
        header: {
          type: 'string',
          pattern: '^[A-Za-z0-9-]+$',
          description: 'Header holding the user id (from: header).',
        },
        consumers: {
          type: 'array',
          items: { type: 'string' },
          default: [],
          description: 'from: header: consumers allowed to act for users (empty: any authenticated consumer).',
        },
        trust_unauthenticated_header: {
          type: 'boolean',
          default: false,
          description:
            'from: header: also trust the header when no authentication policy identified the caller. Anyone can ' +
            'then claim to be anyone: a stand-in for demos only, never for production.',
        },
        namespace: {
          type: 'string',
          default: '',
          description:
            'Mixed into the pseudonym so ids from different identity systems cannot collide. Routes that must see the same user must use the same namespace.',
        },
      },
      required: ['from'],
      additionalProperties: false,
    },
    workflow: {
      type: 'string',
      description:
        'Workflow (kyc.workflows) offered when claims are missing. Default: the only workflow that grants every claim this policy requires.',
    },
    required_claims: {
      ...claimList,
      default: [],
      description: 'Claims required when no rule matches. Empty: requests no rule matches are allowed.',
    },
    rules: {
      type: 'array',
      default: [],
      description:
        'Evaluated in order; the first whose `when` is true decides. See docs/KYC.md for the CEL variables and functions.',
      items: {
        type: 'object',
        properties: {
          name: {
            type: 'string',
            pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
            description: 'Rule name, recorded with every decision it makes.',
          },
          when: {
            type: 'string',
            minLength: 1,
            description:
              'CEL condition; omitted: always. A condition that fails to evaluate (e.g. a missing field) does not match: use has().',
          },
          action: {
            enum: ['allow', 'deny', 'require', 'reroute'],
            description:
              'allow: forward. deny: 403. require: forward only with `claims` (else challenge, pending or denied). reroute: forward to `upstream`.',
          },
          claims: { ...claimList, description: 'Claims that `require` demands (default: required_claims).' },
          level: {
            type: 'string',
            description:
              'Step-up: `require` demands this assurance level (kyc.assurance_levels) and its claims. An API client ' +
              'lacking it gets 401 `insufficient_user_authentication` with `acr_values` (RFC 9470 style) and a ' +
              'verification URL; a browser is redirected to the verification.',
          },
          workflow: {
            type: 'string',
            description:
              "Workflow whose session a `require` rule's challenge offers (e.g. document plus liveness for a step-up). Default: the policy's.",
          },
          upstream: { type: 'string', description: 'Upstream group for `reroute`.' },
          connect_timeout_ms: {
            type: 'integer',
            minimum: 1,
            default: 5000,
            description: 'Connect timeout towards the `reroute` upstream.',
          },
        },
        required: ['name', 'action'],
        additionalProperties: false,
      },
    },
    record_history: {
      type: 'array',
      items: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
      default: [],
      description:
        'Numeric top-level JSON body fields recorded per subject when a request is forwarded and answered below 400, for subject.history_sum / history_count.',
    },
    pending_retry_after_seconds: {
      type: 'integer',
      minimum: 1,
      default: 30,
      description: 'Retry-After of the kyc-pending answer (verification under review).',
    },
    redirect_browsers: {
      type: 'boolean',
      default: true,
      description: 'Answer a challenge with 303 to the verification page when the client accepts text/html.',
    },
  },
  required: ['subject'],
  additionalProperties: false,
} as const;
