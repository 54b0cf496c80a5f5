/** Worker thread: verifies an audit trail, every chain of it (audit/verify.ts) away from the gateway's event loop. */
import { parentPort, workerData } from 'node:worker_threads';
import { loadPublicKey, verifyAuditTrail } from '../audit/verify.js';

const { auditDir } = workerData as { auditDir: string };
try {
  parentPort!.postMessage({ result: verifyAuditTrail(auditDir, loadPublicKey(auditDir)) });
} catch (err) {
  parentPort!.postMessage({ error: (err as Error).message });
}
