/**
 * A client of the admin API for tests: every answer is checked against the schema the OpenAPI document gives for
 * that operation and status (problem+json answers against the Problem schema), so a test fails on any undocumented
 * shape.
 */
import assert from 'node:assert/strict';
import { httpRequest } from './harness.js';
import { API_PREFIX, OPERATIONS, type Operation } from '../src/admin/operations.js';
import { ref } from '../src/admin/schemas.js';
import { responseValidator } from '../src/admin/validation.js';

const validators = new Map<string, ReturnType<typeof responseValidator>>();
function validatorFor(key: string, schema: Record<string, unknown>) {
  let v = validators.get(key);
  if (v === undefined) validators.set(key, (v = responseValidator(schema)));
  return v;
}

export interface AdminAnswer<T = Record<string, unknown>> {
  status: number;
  body: T;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

export class AdminClient {
  constructor(
    readonly base: string,
    readonly key?: string,
  ) {}

  with(key: string | undefined): AdminClient {
    return new AdminClient(this.base, key);
  }

  /** Calls operation `id` with path params, query and body; checks the answer against the documented schema. */
  async call<T = Record<string, unknown>>(
    id: string,
    o: { params?: Record<string, string>; query?: Record<string, string | number>; body?: unknown } = {},
  ): Promise<AdminAnswer<T>> {
    const op = OPERATIONS.find((x) => x.id === id);
    assert.ok(op, `operation ${id}`);
    let path = op.path;
    for (const [k, v] of Object.entries(o.params ?? {})) path = path.replace(`{${k}}`, encodeURIComponent(v));
    const qs = new URLSearchParams(
      Object.entries(o.query ?? {}).map(([k, v]): [string, string] => [k, String(v)]),
    ).toString();
    const res = await httpRequest(`${this.base}${API_PREFIX}${path}${qs ? `?${qs}` : ''}`, {
      method: op.method,
      headers: {
        ...(this.key ? { 'x-admin-key': this.key } : {}),
        ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
    });
    return { ...checked(op, res), text: res.body, headers: res.headers } as AdminAnswer<T>;
  }
}

function checked(op: Operation, res: { status: number; headers: Record<string, unknown>; body: string }) {
  const type = String(res.headers['content-type'] ?? '');
  if (res.status === op.response.status && op.response.contentType) {
    return { status: res.status, body: {} };
  }
  const body = JSON.parse(res.body) as Record<string, unknown>;
  if (res.status === op.response.status) {
    assert.equal(type, 'application/json', `${op.id}: content type`);
    const v = validatorFor(op.id, op.response.schema!);
    assert.ok(v(body), `${op.id} answer matches its schema: ${JSON.stringify(v.errors)}\n${res.body.slice(0, 500)}`);
  } else {
    assert.equal(type, 'application/problem+json', `${op.id} ${res.status}: problem+json (${res.body.slice(0, 200)})`);
    const v = validatorFor('Problem', ref('Problem'));
    assert.ok(v(body), `${op.id} problem matches the Problem schema: ${JSON.stringify(v.errors)}`);
    assert.match(String(body.instance), /^urn:kycgate:request:adm_/);
  }
  return { status: res.status, body };
}
