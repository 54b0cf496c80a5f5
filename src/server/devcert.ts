/**
 * The development certificate for the built-in demo's HTTPS listener: made once under the data directory and
 * reused, so a browser exception or `curl --cacert` keeps working across restarts. Never for production.
 */
import { existsSync, mkdirSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { issueCertificate } from '../workload-identity/certificates.js';
import { loadCertificatePair } from './tls.js';

export async function ensureDevCertificate(dataDir: string): Promise<{ cert: string; key: string }> {
  const dir = path.join(dataDir, 'tls');
  const cert = path.join(dir, 'dev-cert.pem');
  const key = path.join(dir, 'dev-key.pem');
  if (existsSync(cert) && existsSync(key)) {
    try {
      const pair = loadCertificatePair(cert, key);
      if (new Date(pair.x509.validTo).getTime() > Date.now() + 24 * 3600_000) return { cert, key };
    } catch {
      // unreadable or mismatched: make a new pair below
    }
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const issued = await issueCertificate({
    subject: 'CN=kycgate development certificate',
    dns: ['localhost'],
    ips: ['127.0.0.1', '::1'],
  });
  // Write to temporary names and rename, so a crash never leaves a half-written pair.
  writeFileSync(key + '.tmp', issued.keyPem, { mode: 0o600 });
  writeFileSync(cert + '.tmp', issued.certPem);
  renameSync(key + '.tmp', key);
  renameSync(cert + '.tmp', cert);
  return { cert, key };
}
