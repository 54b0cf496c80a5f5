/**
 * `kycgate admin`: every admin API operation from the command line, against a running gateway (`--admin-url`, default
 * $KYCGATE_ADMIN_URL, the admin listener of `--config`, or http://127.0.0.1:9901) with the admin key from
 * $KYCGATE_ADMIN_KEY, `--admin-key-file`, or the key file the config (or the demo) writes in its data directory.
 * Commands are made from the API's operation list: path parameters are arguments, query parameters and body fields
 * are options (lists comma-separated, objects as JSON), `--body` sends a whole JSON body. Answers are printed as JSON;
 * an error prints the problem and exits 1. `kycgate admin openapi` prints the OpenAPI document.
 */
import { existsSync, readFileSync } from 'node:fs';
import nodePath from 'node:path';
import http from 'node:http';
import https from 'node:https';
import type { Command } from 'commander';
import { API_PREFIX, OPERATIONS, type Operation } from '../admin/operations.js';
import { COMPONENTS, type JsonSchema } from '../admin/schemas.js';
import { openApiDocument } from '../admin/openapi.js';
import { VERSION } from '../admin/version.js';
import { loadCliConfig } from './configured-store.js';

export interface Connection {
  adminUrl?: string;
  adminKeyFile?: string;
  config?: string;
  ca?: string;
  cert?: string;
  key?: string;
}

const flag = (name: string) => name.replace(/_/g, '-');
const camel = (name: string) => name.replace(/[_-]([a-z])/g, (_m, c: string) => c.toUpperCase());

/** The top-level properties of an operation's body schema (following a component reference). */
function bodyProperties(op: Operation): Record<string, JsonSchema> {
  let schema = op.body?.schema;
  const ref = schema?.$ref as string | undefined;
  if (ref) schema = COMPONENTS[ref.split('/').pop()!];
  const variants = (schema?.anyOf as JsonSchema[] | undefined) ?? [schema ?? {}];
  return (variants.find((v) => v.type === 'object')?.properties as Record<string, JsonSchema> | undefined) ?? {};
}

function typed(value: string, schema: JsonSchema): unknown {
  const type = schema.type ?? (schema.anyOf as JsonSchema[] | undefined)?.[0]?.type;
  if (type === 'array') return value === '' ? [] : value.split(',').map((s) => s.trim());
  if (type === 'boolean') return value === 'true';
  if (type === 'integer' || type === 'number') return Number(value);
  if (type === 'object') return JSON.parse(value) as unknown;
  if (value === 'null' && Array.isArray(schema.anyOf)) return null;
  return value;
}

function request(
  conn: Connection,
  method: string,
  path: string,
  body: unknown,
): Promise<{ status: number; type: string; text: string }> {
  const target = resolveTarget(conn);
  const keyFile = process.env.KYCGATE_ADMIN_KEY === undefined ? target.keyFile : undefined;
  const key = process.env.KYCGATE_ADMIN_KEY ?? (keyFile ? readFileSync(keyFile, 'utf8').trim() : undefined);
  const url = new URL(target.url.replace(/\/$/, '') + path);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const options: https.RequestOptions = {
    method,
    headers: {
      ...(key ? { 'x-admin-key': key } : {}),
      ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(conn.ca ? { ca: readFileSync(conn.ca) } : {}),
    ...(conn.cert ? { cert: readFileSync(conn.cert) } : {}),
    ...(conn.key ? { key: readFileSync(conn.key) } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? https : http).request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          type: String(res.headers['content-type'] ?? ''),
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Where to call and with which key file: the flags, else $KYCGATE_ADMIN_URL, else the admin listener of `--config`
 * (default http://127.0.0.1:9901); the key file the config's `admin.api.key_file` writes in its data directory (the
 * demo's: ./.kycgate/admin-key) when it exists.
 */
export function resolveTarget(conn: Connection): { url: string; keyFile: string | undefined } {
  const { config, dataDir } = loadCliConfig(conn.config);
  let url = conn.adminUrl ?? process.env.KYCGATE_ADMIN_URL;
  if (url === undefined) {
    const host = conn.config && !['0.0.0.0', '::'].includes(config.admin.address) ? config.admin.address : '127.0.0.1';
    const port = conn.config ? config.admin.port : 9901;
    url = `${config.admin.tls && conn.config ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }
  let keyFile = conn.adminKeyFile;
  if (keyFile === undefined) {
    const candidate = nodePath.resolve(dataDir, conn.config ? (config.admin.api.key_file?.path ?? '') : 'admin-key');
    if (candidate !== dataDir && existsSync(candidate)) keyFile = candidate;
  }
  return { url, keyFile };
}

async function run(op: Operation, args: string[], opts: Record<string, unknown>, conn: Connection): Promise<void> {
  let path = op.path;
  for (const [i, p] of (op.params ?? []).entries()) path = path.replace(`{${p.name}}`, encodeURIComponent(args[i]!));
  const query = new URLSearchParams();
  for (const q of op.query ?? []) {
    const v = opts[camel(q.name)];
    if (v !== undefined) query.set(q.name, String(v));
  }
  let body: unknown;
  if (opts.body !== undefined) body = JSON.parse(String(opts.body));
  else if (op.body) {
    const fields: Record<string, unknown> = {};
    for (const [name, schema] of Object.entries(bodyProperties(op))) {
      const v = opts[camel(name)];
      if (v !== undefined) fields[name] = typed(String(v), schema);
    }
    if (Object.keys(fields).length > 0 || op.body.required) body = fields;
  }
  const qs = query.toString();
  const res = await request(conn, op.method, `${API_PREFIX}${path}${qs ? `?${qs}` : ''}`, body);
  if (res.status >= 400) {
    process.stderr.write(`kycgate: ${res.status} ${res.text}\n`);
    process.exitCode = 1;
    return;
  }
  if (!res.type.startsWith('application/json')) process.stdout.write(res.text);
  else process.stdout.write(JSON.stringify(JSON.parse(res.text), null, 2) + '\n');
}

export function registerAdminCommand(program: Command): void {
  const admin = program
    .command('admin')
    .description(
      'Call the admin API of a running gateway (key from KYCGATE_ADMIN_KEY). Every operation of the API is a command.',
    )
    .option(
      '-c, --config <file>',
      "the gateway's configuration: its admin listener and the key file in its data directory",
    )
    .option(
      '--admin-url <url>',
      "admin listener URL (default: $KYCGATE_ADMIN_URL, the config's, http://127.0.0.1:9901)",
    )
    .option(
      '--admin-key-file <file>',
      "read the admin key from this file when KYCGATE_ADMIN_KEY is not set (default: the config's key_file, ./.kycgate/admin-key)",
    )
    .option('--ca <file>', 'CA bundle to verify an HTTPS admin listener')
    .option('--cert <file>', 'client certificate (PEM) for an admin listener with mTLS')
    .option('--key <file>', 'its private key (PEM)');
  admin
    .command('openapi')
    .description('Print the OpenAPI 3.1 document of the admin API.')
    .action(() => {
      process.stdout.write(JSON.stringify(openApiDocument(VERSION), null, 2) + '\n');
    });
  const groups = new Map<string, Command>();
  for (const op of OPERATIONS) {
    const [groupName, commandName] = op.cli;
    let group = groups.get(groupName);
    if (!group) {
      group = admin.command(groupName).description(`${groupName} (admin API)`);
      groups.set(groupName, group);
    }
    const cmd = group.command(commandName).description(`${op.summary} [${op.method} ${op.path}, role ${op.role}]`);
    for (const p of op.params ?? []) cmd.argument(`<${p.name}>`, p.description);
    for (const q of op.query ?? []) cmd.option(`--${flag(q.name)} <value>`, q.description);
    if (op.body) {
      for (const [name, schema] of Object.entries(bodyProperties(op)))
        cmd.option(`--${flag(name)} <value>`, String(schema.description ?? name));
      cmd.option('--body <json>', 'the whole JSON body instead of the options');
    }
    cmd.action(async (...received: unknown[]) => {
      const command = received[received.length - 1] as Command;
      const args = received.slice(0, (op.params ?? []).length) as string[];
      const conn = admin.opts<Connection>();
      try {
        await run(op, args, command.opts(), conn);
      } catch (err) {
        process.stderr.write(`kycgate: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
  }
}
