/**
 * Certificate issuing with @peculiar/x509 over WebCrypto: the development certificate made on first start, and the
 * CAs and leaves tests create at run time (so no private key is ever kept in the repository).
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto, randomBytes } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  cert: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
}

export interface IssueOptions {
  subject: string;
  /** DNS names, IPs and URIs (SPIFFE IDs) for the subjectAltName. */
  dns?: string[];
  ips?: string[];
  uris?: string[];
  /** Issuer; self-signed when absent. */
  issuer?: IssuedCertificate;
  ca?: boolean;
  /** keyUsage bits; defaults: CA keyCertSign|cRLSign, leaf digitalSignature|keyEncipherment. */
  keyUsage?: number;
  /** Omit the keyUsage extension entirely. */
  noKeyUsage?: boolean;
  extendedKeyUsage?: string[];
  notBefore?: Date;
  notAfter?: Date;
}

function toPem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export const KeyUsage = x509.KeyUsageFlags;

export async function issueCertificate(options: IssueOptions): Promise<IssuedCertificate> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const ca = options.ca ?? false;
  const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(ca, undefined, true)];
  if (!options.noKeyUsage) {
    const usage =
      options.keyUsage ??
      (ca
        ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
        : x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
    extensions.push(new x509.KeyUsagesExtension(usage, true));
  }
  if (options.extendedKeyUsage) extensions.push(new x509.ExtendedKeyUsageExtension(options.extendedKeyUsage, false));
  const names: x509.JsonGeneralName[] = [
    ...(options.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
    ...(options.uris ?? []).map((value) => ({ type: 'url' as const, value })),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  extensions.push(await x509.SubjectKeyIdentifierExtension.create(keys.publicKey));
  if (options.issuer) extensions.push(await x509.AuthorityKeyIdentifierExtension.create(options.issuer.cert));
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(16)
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    subject: options.subject,
    issuer: options.issuer ? options.issuer.cert.subject : options.subject,
    notBefore: options.notBefore ?? new Date(now - 60_000),
    notAfter: options.notAfter ?? new Date(now + 365 * 24 * 3600_000),
    signingAlgorithm: SIGN,
    publicKey: keys.publicKey,
    signingKey: options.issuer ? options.issuer.keys.privateKey : keys.privateKey,
    extensions,
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: cert.toString('pem') + '\n', keyPem: toPem('PRIVATE KEY', pkcs8), cert, keys };
}

/** What a listener presents now: for /readyz, metrics and the stalled-rotation warning (no key material). */
export interface ServedCertificate {
  /** SPIFFE ID from the URI SAN, when the certificate is an X509-SVID. */
  spiffeId?: string;
  /** Serial number, upper-case hex. */
  serial: string;
  /** SHA-256 fingerprint. */
  fingerprint: string;
  notAfter: Date;
  source: 'file' | 'workload_api';
}
