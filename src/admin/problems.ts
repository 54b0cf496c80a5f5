/** Problem types of the admin API (docs/ADMIN.md, "Errors"). */
import { problemType } from '../pipeline/problem.js';

/** `admin.api.enabled` is off: the API does not exist on this gateway. */
export const ADMIN_API_DISABLED = problemType('admin-api-disabled', 404, 'Admin API disabled');
/** No admin credential, or one that is unknown, revoked or expired. */
export const ADMIN_UNAUTHENTICATED = problemType('admin-unauthenticated', 401, 'Admin credential required');
/** The credential's role does not allow this operation (`required_role` names the role needed). */
export const ADMIN_FORBIDDEN = problemType('admin-forbidden', 403, 'Role does not allow this operation');
/** A parameter or the body does not match the operation's schema (`errors` lists where). */
export const ADMIN_INVALID_REQUEST = problemType('admin-invalid-request', 400, 'Invalid admin request');
/** No such resource (consumer, key, subject, event) or no such operation. */
export const ADMIN_NOT_FOUND = problemType('admin-not-found', 404, 'Not found');
/** The resource exists already, or its state does not allow the change (a revoked key cannot be rotated). */
export const ADMIN_CONFLICT = problemType('admin-conflict', 409, 'Conflict with the current state');
/** The resource belongs to the config file (a consumer declared under `consumers:`): change it there. */
export const ADMIN_READ_ONLY = problemType('admin-read-only', 409, 'Resource is managed by the config file');
/** The feature this operation needs is not configured here (no `kyc` section, audit journal off). */
export const ADMIN_NOT_CONFIGURED = problemType('admin-not-configured', 409, 'Feature not configured');

export const ADMIN_API_PROBLEMS = [
  ADMIN_API_DISABLED,
  ADMIN_UNAUTHENTICATED,
  ADMIN_FORBIDDEN,
  ADMIN_INVALID_REQUEST,
  ADMIN_NOT_FOUND,
  ADMIN_CONFLICT,
  ADMIN_READ_ONLY,
  ADMIN_NOT_CONFIGURED,
] as const;
