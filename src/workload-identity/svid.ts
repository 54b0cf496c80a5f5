/**
 * X509-SVID and client certificate validation in gateway code (spiffe/spiffe standards/X509-SVID.md).
 *
 * OpenSSL, as Node drives it, reports `authorized: true` for certificates SPIFFE requires rejecting (two URI
 * SANs, a CA leaf, a leaf with keyCertSign, a root-path ID), and given the union of every bundle as `ca` it cannot
 * bind a trust domain to its own roots. So every rule is checked here, from the DER: extensions are read with
 * @peculiar/x509, signatures are verified with node:crypto (synchronously, so a connection can be refused before
 * its first request is read), and the chain must end in an authority of the SPIFFE ID's OWN trust domain.
 */
// certificates.js first: it loads reflect-metadata, which @peculiar/x509 needs before it is evaluated.
import './certificates.js';
import { X509Certificate as NodeCertificate, createHash } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { parseSpiffeId, type SpiffeId } from './spiffe-id.js';
import type { TrustStore } from './trust-store.js';

/** Longest chain (intermediates) followed before giving up. */
const MAX_INTERMEDIATES = 8;
const SAN_OID = '2.5.29.17';
const BASIC_CONSTRAINTS_OID = '2.5.29.19';
const KEY_USAGE_OID = '2.5.29.15';
const EKU_OID = '2.5.29.37';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

/** Which side the certificate authenticates: decides the extendedKeyUsage it must allow (when it has one). */
export type CertificatePurpose = 'client' | 'server';

export interface AcceptedCertificate {
  ok: true;
  /** `spiffe` for an X509-SVID, `mtls` for a plain client certificate. */
  kind: 'spiffe' | 'mtls';
  spiffeId: SpiffeId | undefined;
  /** SHA-256 of the leaf DER, lower-case hex. */
  fingerprint: string;
  dnsNames: readonly string[];
  /** Subject DN as RFC 4514-style text, e.g. `CN=payments, O=Example`. */
  subject: string;
  /** Epoch ms after which the leaf (or a certificate of its chain) is no longer valid. */
  validUntil: number;
}

export interface RefusedCertificate {
  ok: false;
  /** Stable machine-readable code, for metrics and audit. */
  reason: string;
  /** Safe to show the client. */
  detail: string;
}

export type CertificateVerdict = AcceptedCertificate | RefusedCertificate;

interface ParsedCertificate {
  der: Buffer;
  node: NodeCertificate;
  x509: x509.X509Certificate;
  notBefore: number;
  notAfter: number;
}

function refuse(reason: string, detail: string): RefusedCertificate {
  return { ok: false, reason, detail };
}

function parse(der: Buffer): ParsedCertificate | undefined {
  try {
    const cert = new x509.X509Certificate(der);
    return {
      der,
      node: new NodeCertificate(der),
      x509: cert,
      notBefore: cert.notBefore.getTime(),
      notAfter: cert.notAfter.getTime(),
    };
  } catch {
    return undefined;
  }
}

function isCaCertificate(cert: ParsedCertificate): boolean {
  const bc = cert.x509.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) return false;
  const ku = cert.x509.getExtension(x509.KeyUsagesExtension);
  return !ku || (ku.usages & x509.KeyUsageFlags.keyCertSign) !== 0;
}

function signedBy(child: ParsedCertificate, issuer: NodeCertificate): boolean {
  try {
    return child.node.checkIssued(issuer) && child.node.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * Walks from the leaf through the presented certificates to one of `anchors`, verifying every signature and
 * validity period. Returns the earliest expiry along the path, or a refusal.
 */
function chainToAnchor(
  leaf: ParsedCertificate,
  presented: ParsedCertificate[],
  anchors: readonly NodeCertificate[],
  now: number,
  domain: string,
): number | RefusedCertificate {
  let current = leaf;
  let validUntil = leaf.notAfter;
  const used = new Set<ParsedCertificate>();
  for (let depth = 0; depth <= MAX_INTERMEDIATES; depth++) {
    for (const anchor of anchors) {
      if (!signedBy(current, anchor)) continue;
      const anchorNotAfter = Date.parse(anchor.validTo);
      if (Date.parse(anchor.validFrom) > now || anchorNotAfter < now) continue;
      return Math.min(validUntil, anchorNotAfter);
    }
    let next: ParsedCertificate | undefined;
    for (const candidate of presented) {
      if (used.has(candidate) || candidate === current) continue;
      if (!signedBy(current, candidate.node)) continue;
      if (!isCaCertificate(candidate)) continue;
      if (candidate.notBefore > now || candidate.notAfter < now) continue;
      const pathLength = candidate.x509.getExtension(x509.BasicConstraintsExtension)?.pathLength;
      if (pathLength !== undefined && depth > pathLength) continue;
      next = candidate;
      break;
    }
    if (!next)
      return refuse('untrusted_chain', `The certificate chain does not lead to a trusted authority of ${domain}.`);
    used.add(next);
    validUntil = Math.min(validUntil, next.notAfter);
    current = next;
  }
  return refuse('chain_too_long', 'The certificate chain is too long.');
}

/** Leaf checks shared by both kinds: parseable, in its validity period, not a CA, usable for client auth. */
function checkLeafBasics(
  leaf: ParsedCertificate,
  now: number,
  purpose: CertificatePurpose = 'client',
): RefusedCertificate | undefined {
  if (leaf.notBefore > now) return refuse('not_yet_valid', 'The client certificate is not valid yet.');
  if (leaf.notAfter < now) return refuse('expired', 'The client certificate has expired.');
  const bcs = leaf.x509.getExtensions(BASIC_CONSTRAINTS_OID);
  if (bcs.length > 1) return refuse('malformed_certificate', 'The client certificate has duplicate extensions.');
  const bc = leaf.x509.getExtension(x509.BasicConstraintsExtension);
  if (bc?.ca) return refuse('ca_leaf', 'A CA certificate cannot be used as a client certificate.');
  const eku = leaf.x509.getExtension(x509.ExtendedKeyUsageExtension);
  if (eku && !eku.usages.map(String).includes(purpose === 'client' ? CLIENT_AUTH : SERVER_AUTH)) {
    return refuse('wrong_extended_key_usage', `The certificate is not valid for ${purpose} authentication.`);
  }
  return undefined;
}

function sanInfo(leaf: ParsedCertificate): { uris: string[]; dns: string[] } | RefusedCertificate {
  const sans = leaf.x509.getExtensions(SAN_OID);
  if (sans.length > 1) return refuse('malformed_certificate', 'The client certificate has duplicate extensions.');
  if (sans.length === 0) return { uris: [], dns: [] };
  const san = sans[0];
  // @peculiar/x509 hands out the parsed SAN extension; an unreadable one stays a generic Extension.
  if (!(san instanceof x509.SubjectAlternativeNameExtension))
    return refuse('malformed_certificate', 'The subject alternative names of the client certificate cannot be read.');
  const names = san.names.items;
  const uris: string[] = [];
  const dns: string[] = [];
  for (const n of names) {
    if (n.type === 'url') uris.push(n.value);
    else if (n.type === 'dns') dns.push(n.value.toLowerCase());
  }
  return { uris, dns };
}

/** Collects the DER chain a TLS peer presented (and what OpenSSL completed it with), leaf first. */
export function peerChainDer(peer: { raw: Buffer; issuerCertificate?: unknown } | undefined): Buffer[] {
  const out: Buffer[] = [];
  let current = peer as { raw?: Buffer; issuerCertificate?: unknown } | undefined;
  const seen = new Set<unknown>();
  while (current?.raw && !seen.has(current) && out.length < MAX_INTERMEDIATES + 2) {
    seen.add(current);
    out.push(current.raw);
    current = current.issuerCertificate as typeof current;
  }
  return out;
}

function fingerprintOf(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

function parseChain(
  chainDer: readonly Buffer[],
): { leaf: ParsedCertificate; others: ParsedCertificate[] } | RefusedCertificate {
  if (chainDer.length === 0) return refuse('no_certificate', 'A client certificate is required.');
  const leaf = parse(chainDer[0]!);
  if (!leaf) return refuse('malformed_certificate', 'The client certificate cannot be parsed.');
  const others: ParsedCertificate[] = [];
  for (let i = 1; i < chainDer.length; i++) {
    const c = parse(chainDer[i]!);
    if (c) others.push(c);
  }
  return { leaf, others };
}

/**
 * Validates an X509-SVID: exactly one URI SAN holding a valid SPIFFE ID with a non-root path; cA=false; keyUsage
 * present with digitalSignature and without keyCertSign or cRLSign; a chain to an authority of the ID's own trust
 * domain in `trust`.
 */
export function validateX509Svid(
  chainDer: readonly Buffer[],
  trust: TrustStore,
  now = Date.now(),
  purpose: CertificatePurpose = 'client',
): CertificateVerdict {
  const parsed = parseChain(chainDer);
  if ('reason' in parsed) return parsed;
  return checkSvid(parsed.leaf, parsed.others, trust, now, purpose);
}

function checkSvid(
  leaf: ParsedCertificate,
  others: ParsedCertificate[],
  trust: TrustStore,
  now: number,
  purpose: CertificatePurpose = 'client',
): CertificateVerdict {
  const basics = checkLeafBasics(leaf, now, purpose);
  if (basics) return basics;
  const kus = leaf.x509.getExtensions(KEY_USAGE_OID);
  if (kus.length !== 1) return refuse('svid_key_usage', 'An X509-SVID must have exactly one keyUsage extension.');
  const usages = leaf.x509.getExtension(x509.KeyUsagesExtension)!.usages;
  if ((usages & x509.KeyUsageFlags.digitalSignature) === 0)
    return refuse('svid_key_usage', 'An X509-SVID must allow digitalSignature.');
  if ((usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) !== 0)
    return refuse('svid_key_usage', 'An X509-SVID may not allow keyCertSign or cRLSign.');
  if (leaf.x509.getExtensions(EKU_OID).length > 1)
    return refuse('malformed_certificate', 'The client certificate has duplicate extensions.');
  const san = sanInfo(leaf);
  if ('ok' in san) return san;
  if (san.uris.length !== 1)
    return refuse('svid_uri_san', `An X509-SVID must have exactly one URI SAN (found ${san.uris.length}).`);
  const id = parseSpiffeId(san.uris[0]!);
  if (!id.ok) return refuse('invalid_spiffe_id', `The URI SAN is not a valid SPIFFE ID: ${id.reason}.`);
  if (id.value.path === '')
    return refuse('invalid_spiffe_id', 'An X509-SVID may not carry the root ID of a trust domain.');
  const anchors = trust.x509Authorities(id.value.trustDomain);
  if (!anchors || anchors.length === 0)
    return refuse('unknown_trust_domain', `The trust domain ${id.value.trustDomain} is not trusted.`);
  const validUntil = chainToAnchor(leaf, others, anchors, now, `trust domain ${id.value.trustDomain}`);
  if (typeof validUntil !== 'number') return validUntil;
  return {
    ok: true,
    kind: 'spiffe',
    spiffeId: id.value,
    fingerprint: fingerprintOf(leaf.der),
    dnsNames: san.dns,
    subject: leaf.x509.subject,
    validUntil,
  };
}

function checkPlain(
  leaf: ParsedCertificate,
  others: ParsedCertificate[],
  trust: TrustStore,
  now: number,
): CertificateVerdict {
  const basics = checkLeafBasics(leaf, now);
  if (basics) return basics;
  const ku = leaf.x509.getExtension(x509.KeyUsagesExtension);
  if (ku && (ku.usages & x509.KeyUsageFlags.keyCertSign) !== 0)
    return refuse('ca_leaf', 'A CA certificate cannot be used as a client certificate.');
  const san = sanInfo(leaf);
  if ('ok' in san) return san;
  const validUntil = chainToAnchor(leaf, others, trust.plainAuthorities, now, 'the client CAs');
  if (typeof validUntil !== 'number') return validUntil;
  return {
    ok: true,
    kind: 'mtls',
    spiffeId: undefined,
    fingerprint: fingerprintOf(leaf.der),
    dnsNames: san.dns,
    subject: leaf.x509.subject,
    validUntil,
  };
}

/**
 * Validates whatever a client presented against `trust`: as an X509-SVID when SPIFFE trust domains are configured
 * and the leaf claims a SPIFFE identity (any URI SAN whose scheme reads `spiffe`, in any case, so `Spiffe://` is
 * refused rather than treated as a plain certificate) or when no plain client CA is configured; otherwise as a
 * plain client certificate against the client CAs.
 */
export function validatePeerCertificate(
  chainDer: readonly Buffer[],
  trust: TrustStore,
  now = Date.now(),
): CertificateVerdict {
  const parsed = parseChain(chainDer);
  if ('reason' in parsed) return parsed;
  if (trust.hasTrustDomains) {
    if (!trust.hasPlainRoots) return checkSvid(parsed.leaf, parsed.others, trust, now);
    const san = sanInfo(parsed.leaf);
    if ('ok' in san) return san;
    if (san.uris.some((u) => u.slice(0, 7).toLowerCase() === 'spiffe:'))
      return checkSvid(parsed.leaf, parsed.others, trust, now);
  }
  return checkPlain(parsed.leaf, parsed.others, trust, now);
}
