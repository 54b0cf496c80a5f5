/**
 * Test harness: starts a real gateway from a config object on ephemeral ports, plus helpers for raw-socket
 * requests. Tests use real sockets end to end; nothing here mocks the request path.
 */
import net from 'node:net';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { Writable } from 'node:stream';
import { ConfigValidator } from '../src/config/load.js';
import { POLICIES, PROVIDERS, bundledSubsystems } from '../src/bundled.js';
import { TEST_PROVIDER_TYPE } from './kyc-test-provider.js';

const TEST_SUBSYSTEMS = bundledSubsystems([...PROVIDERS, TEST_PROVIDER_TYPE]);
import { Gateway } from '../src/gateway/gateway.js';
import type { PolicyDefinition } from '../src/pipeline/policy.js';
import type { Subsystem } from '../src/subsystems.js';
import { startEchoServer, type EchoServer } from '../src/demo/echo.js';

export interface TestGateway {
  gateway: Gateway;
  /** Base URL of the first listener. */
  url: string;
  port: number;
  /** Base URL of listener `name`. */
  urlOf(name: string): string;
  adminUrl: string;
  /** Log lines written so far (parsed JSON). */
  logs: Array<Record<string, unknown>>;
  dataDir: string;
  close(): Promise<void>;
}

/** A logger that keeps lines in memory, for assertions on what was (not) logged. */
export function memoryLogger(level = 'info'): { logger: Logger; lines: Array<Record<string, unknown>>; raw: string[] } {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        raw.push(line);
        try {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          /* not JSON */
        }
      }
      cb();
    },
  });
  return { logger: pino({ level }, stream), lines, raw };
}

/**
 * Starts a gateway from `config` (validated like a file). Listener ports default to 0 (ephemeral); the admin
 * listener too. `file` makes it behave as loaded from that path (for reload tests).
 */
export interface TestGatewayOptions {
  file?: string;
  baseDir?: string;
  dataDir?: string;
  watchConfig?: boolean;
  /** The policies configs may name (default: the bundled ones). */
  policies?: readonly PolicyDefinition[];
  /** The subsystems to start (default: the bundled ones). */
  subsystems?: readonly Subsystem[];
}

export async function startTestGateway(
  config: Record<string, unknown>,
  options: TestGatewayOptions = {},
): Promise<TestGateway> {
  const policies = options.policies ?? POLICIES;
  // The bundled subsystems, with the test provider type beside the bundled ones (kyc-test-provider.ts).
  const subsystems = options.subsystems ?? TEST_SUBSYSTEMS;
  const validator = new ConfigValidator(subsystems, policies);
  const cfg = structuredClone(config) as Record<string, unknown>;
  cfg.listeners ??= [{ name: 'main', port: 0 }];
  cfg.admin ??= { port: 0 };
  // Tests assert on access lines: on unless a test configures logging itself.
  (cfg.log as Record<string, unknown> | undefined) ?? (cfg.log = { level: 'info', access: true });
  const validated = validator.validate(cfg);
  const dataDir = options.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'kycgate-test-'));
  const { logger, lines } = memoryLogger();
  let echo: Promise<EchoServer> | undefined;
  const gateway = new Gateway({
    loaded: { config: validated, file: options.file, baseDir: options.baseDir ?? process.cwd() },
    logger,
    dataDir,
    policies,
    subsystems,
    builtinEchoUrl: () => (echo ??= startEchoServer()).then((e) => e.url),
    ...(options.watchConfig !== undefined ? { watchConfig: options.watchConfig } : {}),
  });
  await gateway.start();
  const first = gateway.listeners[0]!;
  return {
    gateway,
    url: gateway.urlOf(first),
    port: first.port,
    urlOf: (name) => gateway.urlOf(gateway.listeners.find((l) => l.config.name === name)!),
    adminUrl: gateway.admin ? `http://127.0.0.1:${gateway.admin.port}` : '',
    logs: lines,
    dataDir,
    async close() {
      await gateway.stop(1000);
      if (echo) await (await echo).close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Sends raw bytes on a new connection and resolves with everything the server sent until it closed (or timeout). */
export function rawRequest(
  port: number,
  payload: string | Buffer,
  timeoutMs = 2000,
  host = '127.0.0.1',
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host, () => socket.write(payload));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (chunks.length > 0) resolve(Buffer.concat(chunks).toString('latin1'));
      else reject(err);
    });
  });
}

/** Status code of the first response in a raw HTTP answer. */
export function statusOf(raw: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  return m ? Number(m[1]) : 0;
}

/** A plain upstream for tests that counts requests; `handler` decides the answer. */
export async function startUpstream(
  handler: http.RequestListener,
): Promise<{ url: string; port: number; requests: number; server: http.Server; close(): Promise<void> }> {
  const state = { requests: 0 };
  const server = http.createServer((req, res) => {
    state.requests++;
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get requests() {
      return state.requests;
    },
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Resolves with a response's status, headers and body text (undici fetch-free, plain node:http). */
export function httpRequest(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer; agent?: http.Agent | false } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: init.method ?? 'GET', headers: init.headers, agent: init.agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}
