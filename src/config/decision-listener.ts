/**
 * Config of a decision listener: a listener with a `decision` block answers forward-auth requests from a front
 * proxy (nginx auth_request, Traefik ForwardAuth, Caddy forward_auth, Envoy ext_authz, Kong) instead of proxying.
 * See docs/DECISION-SERVICE.md.
 */
import { ADDRESS_OR_CIDR } from '../shared/address-list.js';
import { HEADER_NAME_PATTERN } from './http-schema.js';

export const FRONT_PROXY_CONVENTIONS = ['nginx', 'traefik', 'caddy', 'envoy', 'kong'] as const;
export type FrontProxyConvention = (typeof FRONT_PROXY_CONVENTIONS)[number];

export interface DecisionListenerConfig {
  front_proxies: string[];
  conventions: FrontProxyConvention[];
  envoy_path_prefix: string;
  client_address_header: string;
  allow_status: 200 | 204;
  forwarded_body: FrontProxyConvention[];
  browser_redirect: boolean;
  cache: { allow_max_age_s: number; deny_max_age_s: number; vary: string[] };
}

export const decisionListenerSchema = {
  type: 'object',
  description:
    'Turns the listener into a decision service for a front proxy that keeps forwarding: it runs the ' +
    "matched route's policies and answers allow (2xx with headers to inject upstream) or deny (the " +
    'problem to relay), never proxying. See docs/DECISION-SERVICE.md.',
  properties: {
    front_proxies: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', pattern: ADDRESS_OR_CIDR },
      description:
        'Addresses or CIDR ranges of the front proxies allowed to ask for decisions. Any other peer is ' +
        'refused with 403 (decision-untrusted-peer): the original method, URI, host and client address are ' +
        'taken from its headers, so only trusted proxies may send them.',
    },
    conventions: {
      type: 'array',
      items: { enum: [...FRONT_PROXY_CONVENTIONS] },
      default: [...FRONT_PROXY_CONVENTIONS],
      description:
        'Front-proxy conventions served, each on its own path: `/nginx` (X-Original-Method/-URI/-Host, ' +
        'client address in `client_address_header`), `/traefik`, `/caddy`, `/kong` ' +
        '(X-Forwarded-Method/-Uri/-Host/-Proto/-For), and `envoy` (the original path appended to ' +
        '`envoy_path_prefix`, the method as the request method).',
    },
    envoy_path_prefix: {
      type: 'string',
      pattern: '^/[A-Za-z0-9._~-]+$',
      default: '/envoy',
      description:
        "The `path_prefix` configured in Envoy's ext_authz http_service; the rest of the path is the original request target.",
    },
    client_address_header: {
      type: 'string',
      pattern: HEADER_NAME_PATTERN,
      default: 'x-real-ip',
      description:
        'For the nginx convention: header holding the client address (`proxy_set_header X-Real-IP $remote_addr;`).',
    },
    allow_status: { enum: [200, 204], default: 200, description: 'Status of an allow answer.' },
    forwarded_body: {
      type: 'array',
      // nginx auth_request and Caddy forward_auth never send the body: listing them would pass an empty body off
      // as the original.
      items: { enum: ['envoy', 'traefik', 'kong'] },
      default: [],
      description:
        'Conventions whose front proxy is configured to send the original request body as the body of the ' +
        'decision request (Envoy `with_request_body`, Traefik v3 `forwardBody`). For the others a policy ' +
        'that needs the body gets the decision-needs-body problem instead of an empty body.',
    },
    browser_redirect: {
      type: 'boolean',
      default: true,
      description:
        'Answer a verification challenge (a problem with `verification_url`) with 303 and Location when the ' +
        'original request prefers text/html, so the front proxy sends browsers to the verification page.',
    },
    cache: {
      type: 'object',
      description:
        'How long a front proxy may reuse an answer (Cache-Control max-age, X-Accel-Expires for nginx). The ' +
        "effective age is also bounded by the earliest expiry the route's policies report. 0 means no-store.",
      properties: {
        allow_max_age_s: {
          type: 'integer',
          minimum: 0,
          maximum: 3600,
          default: 0,
          description:
            'Longest reuse of an allow answer: also the worst-case delay before a revoked credential or KYC status takes effect behind a caching proxy.',
        },
        deny_max_age_s: {
          type: 'integer',
          minimum: 0,
          maximum: 3600,
          default: 0,
          description:
            'Longest reuse of a denial (401/403, challenges): the worst-case delay before a newly verified user ' +
            'or new credential is let through. Rate-limit and unavailable answers (429, 503) and redirects are ' +
            'never cacheable.',
        },
        vary: {
          type: 'array',
          items: { type: 'string', pattern: HEADER_NAME_PATTERN },
          default: ['authorization', 'cookie', 'x-api-key'],
          description:
            'Original request headers a decision depends on (credentials, subject), listed in Vary besides the ' +
            "convention's own method/URI/host headers. The front proxy's cache key must include them.",
        },
      },
      additionalProperties: false,
      default: {},
    },
  },
  required: ['front_proxies'],
  additionalProperties: false,
} as const;
