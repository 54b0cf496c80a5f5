/**
 * Requests that ask for a protocol upgrade. Once the listener has an 'upgrade' listener, Node hands every request
 * with `Connection: upgrade` and an `Upgrade` header over with the raw socket instead of a response. The gateway
 * answers them through a response made for that socket (closed once it is sent), so they take the same path as
 * any request; only a WebSocket handshake on a route with `websocket: true` is relayed to the upstream.
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** A response on an upgrade request's socket: written like any other, and the socket is closed once it is sent. */
export function responseForUpgrade(req: IncomingMessage, socket: Socket): ServerResponse {
  // Detached from the HTTP server, the socket has no error listener of its own any more.
  socket.on('error', () => socket.destroy());
  const res = new ServerResponse(req);
  res.assignSocket(socket);
  res.shouldKeepAlive = false;
  res.once('finish', () => socket.end());
  return res;
}

/** The comma-separated tokens of every line named `lower` (lower-cased, trimmed), and how many lines there were. */
function tokens(raw: readonly string[], lower: string): { values: string[]; lines: number } {
  const values: string[] = [];
  let lines = 0;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== lower) continue;
    lines++;
    for (const t of raw[i + 1]!.split(',')) {
      const v = t.trim().toLowerCase();
      if (v !== '') values.push(v);
    }
  }
  return { values, lines };
}

function single(raw: readonly string[], lower: string): string | undefined | null {
  let found: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== lower) continue;
    if (found !== undefined) return null;
    found = raw[i + 1]!.trim();
  }
  return found;
}

/** A 16-byte nonce in base64: 22 characters and `==` (RFC 6455 4.1). */
const KEY = /^[A-Za-z0-9+/]{22}==$/;

export type WebSocketHandshake = { kind: 'websocket' } | { kind: 'other' } | { kind: 'invalid'; detail: string };

/**
 * Whether an upgrade request is a WebSocket handshake (RFC 6455 4.1), another upgrade (h2c ..., never relayed),
 * or a WebSocket handshake that is malformed or ambiguous (refused with 400 on a WebSocket route).
 */
export function webSocketHandshake(req: IncomingMessage): WebSocketHandshake {
  const raw = req.rawHeaders;
  const upgrade = tokens(raw, 'upgrade');
  if (!upgrade.values.includes('websocket')) return { kind: 'other' };
  if (upgrade.lines !== 1 || upgrade.values.length !== 1)
    return { kind: 'invalid', detail: 'A WebSocket handshake names one protocol in one Upgrade header.' };
  if (req.method !== 'GET' || req.httpVersion !== '1.1')
    return { kind: 'invalid', detail: 'A WebSocket handshake is an HTTP/1.1 GET.' };
  if (!tokens(raw, 'connection').values.includes('upgrade'))
    return { kind: 'invalid', detail: 'A WebSocket handshake carries Connection: upgrade.' };
  const key = single(raw, 'sec-websocket-key');
  if (key === null || key === undefined || !KEY.test(key))
    return { kind: 'invalid', detail: 'A WebSocket handshake carries one Sec-WebSocket-Key: 16 bytes in base64.' };
  const version = single(raw, 'sec-websocket-version');
  if (version !== '13')
    return { kind: 'invalid', detail: 'Only WebSocket version 13 is supported (one Sec-WebSocket-Version: 13).' };
  return { kind: 'websocket' };
}
