/**
 * The OpenAPI 3.1 document of the admin API, made from the operation list and the schemas the handlers validate
 * with. Served at /admin/api/openapi.json; docs/admin-openapi.json is a copy a test keeps up to date.
 */
import { ADMIN_API_PROBLEMS } from './problems.js';
import { API_PREFIX, OPERATIONS, type Operation } from './operations.js';
import { COMPONENTS, ref, type JsonSchema } from './schemas.js';
import { PROBLEM_BASE } from '../pipeline/problem.js';

const ROLE_RANK = { viewer: 'viewer, operator or admin', operator: 'operator or admin', admin: 'admin' } as const;

function problemResponse(description: string): JsonSchema {
  return { description, content: { 'application/problem+json': { schema: ref('Problem') } } };
}

function operationObject(op: Operation): JsonSchema {
  const parameters = [
    ...(op.params ?? []).map((p) => ({
      name: p.name,
      in: 'path',
      required: true,
      description: p.description,
      schema: p.schema,
    })),
    ...(op.query ?? []).map((p) => ({
      name: p.name,
      in: 'query',
      required: p.required === true,
      description: p.description,
      schema: p.schema,
    })),
  ];
  const success: JsonSchema = { description: op.response.description };
  if (op.response.schema) success.content = { 'application/json': { schema: op.response.schema } };
  else if (op.response.contentType)
    success.content = {
      [op.response.contentType]: { schema: { type: 'string' } },
      'text/plain': { schema: { type: 'string' } },
    };
  const responses: Record<string, JsonSchema> = {
    [String(op.response.status)]: success,
    '401': problemResponse('No valid admin credential (`admin-unauthenticated`).'),
    '403': problemResponse(`The role does not allow it (\`admin-forbidden\`); needs ${ROLE_RANK[op.role]}.`),
  };
  if (op.params || op.body || op.query)
    responses['400'] = problemResponse('Invalid parameters or body (`admin-invalid-request`).');
  if (op.params) responses['404'] = problemResponse('No such resource (`admin-not-found`).');
  if (op.method !== 'GET') responses['409'] = problemResponse('Conflicts with the current state, or read-only.');
  responses['503'] = problemResponse('The store cannot be reached (`service-unavailable`).');
  return {
    operationId: op.id,
    summary: op.summary,
    tags: [op.tag],
    'x-kycgate-role': op.role,
    'x-kycgate-cli': `kycgate admin ${op.cli[0]} ${op.cli[1]}`,
    ...(op.audit ? { 'x-kycgate-audit-event': op.audit } : {}),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(op.body
      ? { requestBody: { required: op.body.required, content: { 'application/json': { schema: op.body.schema } } } }
      : {}),
    responses,
  };
}

export function openApiDocument(version: string): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const op of OPERATIONS) (paths[op.path] ??= {})[op.method.toLowerCase()] = operationObject(op);
  return {
    openapi: '3.1.0',
    info: {
      title: 'kycgate admin API',
      version,
      description:
        'Operate a kycgate gateway: consumers, API keys, subjects, webhooks, audit, runtime state and statistics. ' +
        'Served on the admin listener only. Errors are RFC 9457 problem+json with these types: ' +
        ADMIN_API_PROBLEMS.map((p) => `\`${PROBLEM_BASE}${p.kind}\` (${p.status})`).join(', ') +
        '. See docs/ADMIN.md.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: API_PREFIX }],
    security: [{ adminKey: [] }, { bearer: [] }, { mtls: [] }],
    tags: [...new Set(OPERATIONS.map((o) => o.tag))].map((name) => ({ name })),
    paths,
    components: {
      schemas: COMPONENTS,
      securitySchemes: {
        adminKey: { type: 'apiKey', in: 'header', name: 'x-admin-key', description: 'An admin key (`kga_…`).' },
        bearer: { type: 'http', scheme: 'bearer', description: 'An admin key as a bearer token.' },
        mtls: {
          type: 'mutualTLS',
          description: 'A client certificate whose SPIFFE ID `admin.api.mtls` maps to a role.',
        },
      },
    },
  };
}
