/**
 * Sinks ship the journal to a SIEM. Each reads committed records from disk from its own persisted cursor, sends a
 * batch, and only then advances and saves the cursor: delivery is at least once and in order (a record may be sent
 * again after a crash between sending and saving; its `id` de-duplicates). A sink that is down only stops its
 * cursor; memory stays bounded (one batch) and the journal backs up on disk, watched by the disk alarm.
 */
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import os from 'node:os';
import { request as undiciRequest } from 'undici';
import type { Logger } from 'pino';
import { readBatch, type Cursor } from './reader.js';
import type { Journal } from './journal.js';
import type { SinkConfig } from './schema.js';
import { WARNING_EVENTS } from './record.js';

/** Sends one batch of record lines; resolves when the destination has taken them, rejects otherwise. */
export interface Transport {
  send(lines: string[]): Promise<void>;
  close(): Promise<void>;
}

/** A receiver's refusal, with its HTTP status. */
export class DeliveryRefused extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }

  /** 4xx other than timeout and rate limiting: retrying the same request will not help by itself. */
  get permanent(): boolean {
    return this.status >= 400 && this.status < 500 && this.status !== 408 && this.status !== 429;
  }
}

/** While deliveries keep failing, the failure is logged again this often (not only when the sink goes down). */
const REPEAT_FAILURE_LOG_MS = 5 * 60_000;

export class SinkRunner {
  cursor: Cursor;
  delivered = 0;
  failures = 0;
  /** True while the last delivery failed. */
  down = false;
  private readonly cursorFile: string;
  private wake: (() => void) | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private delayTimer: NodeJS.Timeout | undefined;
  /** Records per batch: the configured size, halved for a receiver that answers 413, grown back after successes. */
  private batchLimit: number;
  private failureLoggedAt = 0;

  constructor(
    readonly config: SinkConfig,
    private readonly transport: Transport,
    private readonly journal: Journal,
    private readonly auditDir: string,
    private readonly logger: Logger,
  ) {
    this.cursorFile = path.join(auditDir, 'cursors', `${config.name}.json`);
    fs.mkdirSync(path.dirname(this.cursorFile), { recursive: true, mode: 0o700 });
    this.cursor = readCursor(this.cursorFile);
    this.batchLimit = config.batch_records;
    if (this.cursor.seq > journal.committed.seq) {
      // The journal was replaced (or restored from an older backup): the cursor points past its end.
      logger.warn(
        { sink: config.name, cursor_seq: this.cursor.seq, journal_seq: journal.committed.seq },
        'audit sink cursor is past the end of the journal; delivering from the start',
      );
      this.cursor = { seq: 0, segment: 1, offset: 0 };
    }
    journal.onCommit(() => this.wake?.());
  }

  get backlog(): number {
    return Math.max(0, this.journal.committed.seq - this.cursor.seq);
  }

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let delay = this.config.retry_initial_ms;
    while (!this.stopped) {
      const batch = await readBatch(this.auditDir, this.cursor, this.journal.committed, this.batchLimit).catch(
        (err: Error) => {
          this.logger.error({ sink: this.config.name, err: err.message }, 'audit sink cannot read the journal');
          return undefined;
        },
      );
      if (batch === undefined) {
        await this.sleep(delay);
        continue;
      }
      if (batch.lines.length === 0) {
        if (batch.next.segment !== this.cursor.segment || batch.next.offset !== this.cursor.offset)
          this.saveCursor(batch.next);
        await this.idle();
        continue;
      }
      try {
        await this.transport.send(batch.lines);
      } catch (err) {
        this.failures++;
        this.deliveryFailed(err as Error, batch.lines.length);
        this.down = true;
        await this.sleep(delay * (0.8 + Math.random() * 0.4));
        delay = Math.min(delay * 2, this.config.retry_max_ms);
        continue;
      }
      if (this.down)
        this.logger.info(
          { sink: this.config.name, backlog: this.backlog, batch_records: this.batchLimit },
          'audit sink delivering again',
        );
      this.down = false;
      this.failureLoggedAt = 0;
      delay = this.config.retry_initial_ms;
      this.delivered += batch.lines.length;
      this.saveCursor(batch.next);
    }
  }

  /**
   * A 413 halves the batch for the next attempts (down to one record), and the batch stays at that size until the
   * gateway restarts: growing back would only find the receiver's limit again by being refused. Refusals that
   * retrying alone cannot fix (a wrong credential, a rejected payload, one record over the receiver's size limit) are
   * errors. Every shrink is logged; other failures are logged, and again at most every REPEAT_FAILURE_LOG_MS while
   * they last.
   */
  private deliveryFailed(err: Error, sent: number): void {
    const refused = err instanceof DeliveryRefused ? err : undefined;
    const tooLarge = refused?.status === 413;
    if (tooLarge) this.batchLimit = Math.max(1, Math.floor(sent / 2));
    const now = Date.now();
    // A smaller batch is always worth a line (at most log2(batch_records) of them, as the size never grows back).
    const shrunk = tooLarge && sent > 1;
    if (this.down && now - this.failureLoggedAt < REPEAT_FAILURE_LOG_MS && !shrunk) return;
    this.failureLoggedAt = now;
    const fields = {
      sink: this.config.name,
      err: err.message,
      backlog: this.backlog,
      ...(refused ? { status: refused.status } : {}),
    };
    if (tooLarge && !shrunk)
      this.logger.error(
        fields,
        'audit sink receiver refuses a single record as too large; raise its size limit (records stay in the journal)',
      );
    else if (shrunk)
      this.logger.warn(
        { ...fields, batch_records: this.batchLimit },
        'audit sink receiver refused the batch size; retrying with smaller batches',
      );
    else if (refused?.permanent)
      this.logger.error(
        fields,
        'audit sink receiver refuses deliveries; fix the sink or its credentials (records stay in the journal)',
      );
    else this.logger.warn(fields, 'audit sink delivery failed; retrying with backoff (records stay in the journal)');
  }

  private saveCursor(next: Cursor): void {
    this.cursor = next;
    const tmp = `${this.cursorFile}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(next), { mode: 0o600 });
    fs.renameSync(tmp, this.cursorFile);
  }

  private idle(): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopped || this.journal.committed.seq > this.cursor.seq) return resolve();
      this.wake = () => {
        this.wake = undefined;
        resolve();
      };
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.delayTimer = setTimeout(resolve, ms);
      this.wake = () => undefined; // commits do not cut a backoff short
      const stop = () => {
        clearTimeout(this.delayTimer);
        resolve();
      };
      this.stopWaiter = stop;
    });
  }

  private stopWaiter: (() => void) | undefined;

  /** Delivers what is committed (bounded by `deadlineMs`), then stops. */
  async stop(deadlineMs = 2000): Promise<void> {
    const until = Date.now() + deadlineMs;
    while (!this.down && this.backlog > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    this.stopped = true;
    this.wake?.();
    this.stopWaiter?.();
    await this.loop;
    await this.transport.close();
  }
}

function readCursor(file: string): Cursor {
  try {
    const c = JSON.parse(fs.readFileSync(file, 'utf8')) as Cursor;
    if (typeof c.seq === 'number' && typeof c.segment === 'number' && typeof c.offset === 'number') return c;
  } catch {
    /* first start */
  }
  return { seq: 0, segment: 1, offset: 0 };
}

/** Batched JSON POST: the body is a JSON array of records (each line as stored, so hashes stay checkable). */
export class HttpTransport implements Transport {
  constructor(
    private readonly url: string,
    private readonly timeoutMs: number,
    private readonly authorization: string | undefined,
  ) {}

  async send(lines: string[]): Promise<void> {
    const res = await undiciRequest(this.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(this.authorization ? { authorization: this.authorization } : {}),
      },
      body: `[${lines.join(',')}]`,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    });
    await res.body.dump();
    if (res.statusCode < 200 || res.statusCode >= 300) throw new DeliveryRefused(res.statusCode);
  }

  async close(): Promise<void> {}
}

/** JSON-lines file, rotated by size (<path>.1 newest ... <path>.<keep>); fsynced per batch. */
export class FileTransport implements Transport {
  constructor(
    private readonly file: string,
    private readonly maxBytes: number,
    private readonly keep: number,
  ) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
  }

  async send(lines: string[]): Promise<void> {
    let size = 0;
    try {
      size = (await fs.promises.stat(this.file)).size;
    } catch {
      /* new file */
    }
    if (size >= this.maxBytes) await this.rotate();
    const fh = await fs.promises.open(this.file, 'a', 0o600);
    try {
      await fh.write(lines.join('\n') + '\n');
      await fh.datasync();
    } finally {
      await fh.close();
    }
  }

  private async rotate(): Promise<void> {
    await fs.promises.rm(`${this.file}.${this.keep}`, { force: true });
    for (let i = this.keep - 1; i >= 1; i--)
      await fs.promises.rename(`${this.file}.${i}`, `${this.file}.${i + 1}`).catch(() => undefined);
    await fs.promises.rename(this.file, `${this.file}.1`);
  }

  async close(): Promise<void> {}
}

/**
 * RFC 5424 syslog over TCP with octet-counting framing (RFC 6587), or TLS (RFC 5425). One connection, reopened
 * after an error; a batch counts as sent once the socket has flushed it.
 */
export class SyslogTransport implements Transport {
  private socket: net.Socket | undefined;
  private readonly hostname =
    os
      .hostname()
      .replace(/[^\x21-\x7e]/g, '')
      .slice(0, 255) || '-';

  constructor(
    private readonly o: {
      host: string;
      port: number;
      tls?: { ca?: string; servername?: string };
      facility: number;
      appName: string;
      timeoutMs: number;
      baseDir: string;
    },
  ) {}

  private connect(): Promise<net.Socket> {
    if (this.socket && !this.socket.destroyed) return Promise.resolve(this.socket);
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        socket.destroy();
        reject(err);
      };
      const socket: net.Socket = this.o.tls
        ? tls.connect(
            {
              host: this.o.host,
              port: this.o.port,
              servername: this.o.tls.servername ?? this.o.host,
              ...(this.o.tls.ca ? { ca: fs.readFileSync(path.resolve(this.o.baseDir, this.o.tls.ca)) } : {}),
              minVersion: 'TLSv1.2',
            },
            () => done(),
          )
        : net.connect({ host: this.o.host, port: this.o.port }, () => done());
      const timer = setTimeout(() => onError(new Error('connect timeout')), this.o.timeoutMs);
      const done = () => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.on('error', () => socket.destroy());
        socket.setKeepAlive(true);
        this.socket = socket;
        resolve(socket);
      };
      socket.once('error', onError);
    });
  }

  /** One RFC 5424 message: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG`, framed as `LEN SP MSG`. */
  frame(line: string): Buffer {
    let time = '-';
    let msgId = 'audit';
    let severity = 6;
    const m = /"time":"([^"]+)","kind":"([a-z]+)","type":"([^"]{1,32})"/.exec(line);
    if (m) {
      time = m[1]!;
      msgId = m[3]!.replace(/[^\x21-\x7e]/g, '_');
      if (WARNING_EVENTS.has(msgId)) severity = 4;
    }
    const msg = Buffer.from(
      `<${this.o.facility * 8 + severity}>1 ${time} ${this.hostname} ${this.o.appName} ${process.pid} ${msgId} - ${line}`,
      'utf8',
    );
    return Buffer.concat([Buffer.from(`${msg.length} `, 'ascii'), msg]);
  }

  async send(lines: string[]): Promise<void> {
    const socket = await this.connect();
    const payload = Buffer.concat(lines.map((l) => this.frame(l)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('write timeout'));
      }, this.o.timeoutMs);
      socket.write(payload, (err) => {
        clearTimeout(timer);
        if (err) {
          socket.destroy();
          reject(err);
        } else resolve();
      });
    });
  }

  async close(): Promise<void> {
    this.socket?.end();
    this.socket?.destroy();
  }
}

export function transportFor(
  config: SinkConfig,
  dataDir: string,
  baseDir: string,
  resolveSecret: (ref: unknown) => string,
): Transport {
  switch (config.type) {
    case 'http':
      if (!config.url) throw new Error(`audit.sinks.${config.name}.url: required for an http sink`);
      return new HttpTransport(
        config.url,
        config.timeout_ms,
        config.authorization ? resolveSecret(config.authorization) : undefined,
      );
    case 'file':
      if (!config.path) throw new Error(`audit.sinks.${config.name}.path: required for a file sink`);
      return new FileTransport(path.resolve(dataDir, config.path), config.max_bytes, config.keep_files);
    case 'syslog':
      if (!config.host || !config.port)
        throw new Error(`audit.sinks.${config.name}: host and port are required for a syslog sink`);
      return new SyslogTransport({
        host: config.host,
        port: config.port,
        ...(config.tls ? { tls: config.tls } : {}),
        facility: config.facility,
        appName: config.app_name,
        timeoutMs: config.timeout_ms,
        baseDir,
      });
  }
}
