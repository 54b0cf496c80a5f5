/**
 * The built-in demo configuration that `kycgate start` runs when no config file is given: HTTP on 8080, HTTPS on
 * 8443 with a development certificate, admin on 9901 and demo routes in front of the embedded echo service.
 * It goes through the same validation as a file.
 */
/** The sandbox's demo workflow (any UUID: the sandbox runs every workflow the same way). */
export const DEMO_WORKFLOW_ID = '7d3c9a52-1f0e-4b8a-9d6e-3c2b1a0f9e8d';

export function demoConfig(
  tls: { cert: string; key: string },
  env: NodeJS.ProcessEnv = process.env,
): Record<string, unknown> {
  const providers: Record<string, unknown> = {
    // The embedded Didit stand-in: a hosted page with Approve / Decline / Send to review, and signed webhooks.
    sandbox: { type: 'sandbox', port: 8090 },
  };
  if (env.DIDIT_WEBHOOK_SECRET) {
    // Real Didit webhooks to POST /webhooks/didit are verified with this secret; sessions need DIDIT_API_KEY.
    providers.didit = {
      type: 'didit',
      webhook_secret: { env: 'DIDIT_WEBHOOK_SECRET' },
      ...(env.DIDIT_API_KEY ? { api_key: { env: 'DIDIT_API_KEY' } } : {}),
    };
  }
  return {
    listeners: [
      { name: 'http', address: '127.0.0.1', port: 8080 },
      { name: 'https', address: '127.0.0.1', port: 8443, tls: { cert: tls.cert, key: tls.key } },
    ],
    // The admin API with an admin key made on first start and kept in the data directory (mode 0600).
    admin: { address: '127.0.0.1', port: 9901, api: { enabled: true, key_file: { path: 'admin-key' } } },
    // The demo shows each request in the terminal.
    log: { access: true },
    kyc: {
      providers,
      workflows: {
        'demo-kyc': {
          provider: 'sandbox',
          workflow_id: DEMO_WORKFLOW_ID,
          claims: { kyc_full: 'facts.status == "Approved"' },
          application_name: 'kycgate demo shop',
          purpose: 'Orders are only taken from verified customers.',
        },
      },
    },
    audit: { enabled: true },
    upstreams: {
      echo: { targets: [{ url: 'builtin:echo' }] },
    },
    routes: [
      {
        name: 'demo-echo',
        match: { prefix: '/demo/echo' },
        upstream: 'echo',
      },
      {
        name: 'demo-headers',
        match: { prefix: '/demo/headers' },
        upstream: 'echo',
        policies: [
          {
            'request-headers': {
              set: { 'x-demo': 'set by kycgate' },
              remove: ['cookie'],
              response_set: { 'x-demo-response': 'yes' },
            },
          },
        ],
      },
      {
        name: 'demo-kyc',
        match: { prefix: '/demo/kyc' },
        upstream: 'echo',
        policies: [
          {
            'kyc-gate': {
              // Demo stand-in for an authenticated user: anyone can claim any id with this header. In production the
              // subject comes from a verified JWT claim, the consumer, an mTLS identity, or a header sent by an
              // authenticated backend.
              subject: { from: 'header', header: 'x-user-id', trust_unauthenticated_header: true },
              required_claims: ['kyc_full'],
            },
          },
        ],
      },
      {
        name: 'demo-static',
        match: { path: '/demo/static', methods: ['GET', 'HEAD'] },
        policies: [{ 'static-response': { status: 200, body: 'Hello from kycgate.\n' } }],
      },
    ],
  };
}
