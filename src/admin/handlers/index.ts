/** Every operation's handler, by operation id (operations.ts lists the operations). */
import type { Handler } from '../call.js';
import { AUDIT_HANDLERS } from './audit.js';
import { AUTH_HANDLERS } from './auth.js';
import { KYC_HANDLERS } from './kyc.js';
import { RUNTIME_HANDLERS } from './runtime.js';
import { INCIDENT_HANDLERS } from './incidents.js';

export const HANDLERS: Record<string, Handler> = {
  ...AUTH_HANDLERS,
  ...KYC_HANDLERS,
  ...AUDIT_HANDLERS,
  ...RUNTIME_HANDLERS,
  ...INCIDENT_HANDLERS,
};
