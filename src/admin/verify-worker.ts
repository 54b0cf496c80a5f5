/** Worker thread: verifies an audit journal (audit/verify.ts) away from the gateway's event loop. */
import { parentPort, workerData } from 'node:worker_threads';
import { loadPublicKey, verifyJournal } from '../audit/verify.js';

const { auditDir } = workerData as { auditDir: string };
try {
  parentPort!.postMessage({ result: verifyJournal(auditDir, loadPublicKey(auditDir)) });
} catch (err) {
  parentPort!.postMessage({ error: (err as Error).message });
}
