/**
 * An OIDC issuer stand-in for tests: serves discovery (`/.well-known/openid-configuration`) and a JWKS (`/jwks`)
 * with the keys a test publishes, counts fetches, and can fail its JWKS on demand.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import type { JWK } from 'jose';

export interface IdP {
  url: string;
  /** Keys published in the JWKS. */
  published: JWK[];
  jwksFetches: number;
  discoveryFetches: number;
  failing: boolean;
  close(): Promise<void>;
}

export async function startIdP(t: TestContext): Promise<IdP> {
  const idp = { published: [] as JWK[], jwksFetches: 0, discoveryFetches: 0, failing: false } as IdP;
  const server = http.createServer((req, res) => {
    if (req.url === '/.well-known/openid-configuration') {
      idp.discoveryFetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ issuer: idp.url, jwks_uri: `${idp.url}/jwks` }));
      return;
    }
    if (req.url === '/jwks') {
      idp.jwksFetches++;
      if (idp.failing) {
        res.statusCode = 500;
        res.end('down');
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: idp.published }));
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  idp.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  idp.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  t.after(() => idp.close());
  return idp;
}
