/**
 * The KYC assertion sent upstream: a compact JWS (ES256 or EdDSA) saying which pseudonymous subject passed which
 * verification, for which upstream (`aud`), for 60 seconds. Upstreams verify it with the public keys served at
 * the JWKS route, so they never need to trust a plain header. Signing happens once per subject and upstream per
 * `cache_seconds`, not per request.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, type JWK } from 'jose';
import { persistedSecret } from './keys.js';

export interface AssertionKey {
  readonly privateKey: KeyObject;
  readonly alg: 'ES256' | 'EdDSA';
  readonly kid: string;
  readonly publicJwk: JWK;
}

/** Loads a PKCS#8 PEM key (EC P-256 or Ed25519); throws naming the problem, never the key. */
export async function loadAssertionKey(pem: string): Promise<AssertionKey> {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    throw new Error('kyc.assertion.signing_key: not a readable PEM private key');
  }
  let alg: AssertionKey['alg'];
  if (privateKey.asymmetricKeyType === 'ed25519') alg = 'EdDSA';
  else if (privateKey.asymmetricKeyType === 'ec' && privateKey.asymmetricKeyDetails?.namedCurve === 'prime256v1')
    alg = 'ES256';
  else throw new Error('kyc.assertion.signing_key: must be an EC P-256 or Ed25519 key');
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(jwk);
  return { privateKey, alg, kid, publicJwk: { ...jwk, kid, alg, use: 'sig' } };
}

/** The demo's key: generated once (EC P-256) and kept in the data directory. */
export function persistedAssertionKeyPem(dataDir: string): string {
  return persistedSecret(dataDir, 'kyc-assertion-key.pem', () =>
    generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ format: 'pem', type: 'pkcs8' })
      .toString()
      .trim(),
  );
}

export interface AssertionContent {
  subject: string;
  audience: string;
  status: string;
  claims: readonly string[];
  verifiedAt: number | null;
  /** The highest assurance level reached (`acr`), when levels are configured. */
  level?: string | undefined;
}

export class AssertionSigner {
  readonly jwksBody: string;

  constructor(
    private readonly key: AssertionKey,
    private readonly issuer: string,
    readonly lifetimeSeconds: number,
  ) {
    this.jwksBody = JSON.stringify({ keys: [key.publicJwk] });
  }

  /** Signs an assertion valid from now for `lifetimeSeconds`. */
  sign(content: AssertionContent, nowSeconds: number): Promise<string> {
    const payload: Record<string, unknown> = { kyc_status: content.status, kyc_claims: content.claims };
    if (content.verifiedAt !== null) payload.kyc_verified_at = Math.floor(content.verifiedAt / 1000);
    if (content.level !== undefined) payload.acr = content.level;
    return new SignJWT(payload)
      .setProtectedHeader({ alg: this.key.alg, kid: this.key.kid, typ: 'kycgate-assertion+jwt' })
      .setIssuer(this.issuer)
      .setSubject(content.subject)
      .setAudience(content.audience)
      .setIssuedAt(nowSeconds)
      .setNotBefore(nowSeconds - 5)
      .setExpirationTime(nowSeconds + this.lifetimeSeconds)
      .sign(this.key.privateKey);
  }
}
