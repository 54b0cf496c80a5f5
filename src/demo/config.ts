/**
 * The built-in demo configuration that `kycgate start` runs when no config file is given: HTTP on 8080, HTTPS on
 * 8443 with a development certificate, admin on 9901 and demo routes in front of the embedded echo service.
 * It goes through the same validation as a file.
 */
export function demoConfig(tls: { cert: string; key: string }): Record<string, unknown> {
  return {
    listeners: [
      { name: 'http', address: '127.0.0.1', port: 8080 },
      { name: 'https', address: '127.0.0.1', port: 8443, tls: { cert: tls.cert, key: tls.key } },
    ],
    admin: { address: '127.0.0.1', port: 9901 },
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
          { 'request-headers': { set: { 'x-demo': 'set by kycgate' }, remove: ['cookie'], response_set: { 'x-demo-response': 'yes' } } },
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
