/**
 * Finds where each HTTP/1.1 response ends on a keep-alive connection, for the fixed-rate load generator
 * (bench/open-loop.ts): status line and headers, then a body framed by Content-Length or chunked transfer coding,
 * or none (1xx, 204, 304). It reads bytes as they arrive, in any split, and keeps nothing but the unread tail.
 *
 * It frames answers to GET requests only (a HEAD answer would be misread) and refuses a response it cannot
 * frame on a kept-alive connection (no Content-Length and not chunked): the generator counts that as a failure.
 */

const CRLF = 0x0d0a;
const LINE_END = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

export class FramingError extends Error {}

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-data-end' | 'trailers';

export class ResponseFramer {
  private pending: Buffer | undefined;
  private state: State = 'head';
  private remaining = 0;
  private status = 0;

  /** `onResponse` is called with the status once the last byte of a final (non-1xx) response has been read. */
  constructor(private readonly onResponse: (status: number) => void) {}

  /** True between responses: nothing of the next one has arrived yet. */
  get idle(): boolean {
    return this.state === 'head' && this.pending === undefined;
  }

  push(chunk: Buffer): void {
    const buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = undefined;
    let at = 0;
    while (at < buf.length) {
      const next = this.step(buf, at);
      if (next < 0) break;
      at = next;
    }
    if (at < buf.length) this.pending = buf.subarray(at);
  }

  /** Consumes what it can from `buf` at `at`; returns the new offset, or -1 when it needs more bytes. */
  private step(buf: Buffer, at: number): number {
    switch (this.state) {
      case 'head': {
        const end = buf.indexOf(HEAD_END, at);
        if (end < 0) return -1;
        this.startBody(buf.toString('latin1', at, end));
        return end + 4;
      }
      case 'length': {
        const take = Math.min(this.remaining, buf.length - at);
        this.remaining -= take;
        if (this.remaining === 0) this.complete();
        return at + take;
      }
      case 'chunk-size': {
        const eol = buf.indexOf(LINE_END, at);
        if (eol < 0) return -1;
        const line = buf.toString('latin1', at, eol);
        const size = parseInt(line.split(';', 1)[0]!.trim(), 16);
        if (!Number.isFinite(size) || size < 0) throw new FramingError(`bad chunk size "${line}"`);
        if (size === 0) this.state = 'trailers';
        else {
          this.remaining = size;
          this.state = 'chunk-data';
        }
        return eol + 2;
      }
      case 'chunk-data': {
        const take = Math.min(this.remaining, buf.length - at);
        this.remaining -= take;
        if (this.remaining === 0) this.state = 'chunk-data-end';
        return at + take;
      }
      case 'chunk-data-end': {
        if (buf.length - at < 2) return -1;
        if (buf.readUInt16BE(at) !== CRLF) throw new FramingError('chunk data not followed by CRLF');
        this.state = 'chunk-size';
        return at + 2;
      }
      case 'trailers': {
        const eol = buf.indexOf(LINE_END, at);
        if (eol < 0) return -1;
        // An empty line ends the trailer section, and the response.
        if (eol === at) this.complete();
        return eol + 2;
      }
    }
  }

  private startBody(head: string): void {
    const status = Number(head.slice(9, 12));
    if (!head.startsWith('HTTP/1.') || !(status >= 100 && status <= 599))
      throw new FramingError(`not an HTTP/1.x status line: "${head.slice(0, 40)}"`);
    this.status = status;
    if (status < 200) return; // an interim response: the final one follows
    if (status === 204 || status === 304) return this.complete();
    let length = -1;
    let chunked = false;
    for (const line of head.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      if (name === 'content-length') length = Number(line.slice(colon + 1).trim());
      else if (name === 'transfer-encoding') chunked = /(^|,)\s*chunked\s*$/i.test(line.slice(colon + 1));
    }
    if (chunked) this.state = 'chunk-size';
    else if (Number.isInteger(length) && length >= 0) {
      if (length === 0) return this.complete();
      this.remaining = length;
      this.state = 'length';
    } else throw new FramingError(`status ${status} without Content-Length or chunked framing`);
  }

  private complete(): void {
    this.state = 'head';
    this.onResponse(this.status);
  }
}
