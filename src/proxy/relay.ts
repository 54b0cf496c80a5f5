/**
 * A relayed WebSocket connection, once the upstream answered the handshake with 101: bytes flow both ways until
 * either side closes, and a relay silent both ways for the route's `websocket_idle_ms` is closed.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** Relays `client` and `upstream` both ways; `ended` runs once both sockets closed. */
export function relay(client: Socket, upstream: Duplex, idleMs: number, ended: () => void): void {
  let open = 2;
  const closed = () => {
    if (--open === 0) ended();
  };
  // An error on one side ends the other at once; a side that closed ends the other gracefully (what it still
  // had to send is flushed), except that nothing can reach a client that is gone.
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.once('close', () => {
    upstream.destroy();
    closed();
  });
  upstream.once('close', () => {
    client.end();
    closed();
  });
  // Silence both ways (the client socket sees every byte of the relay, read or written) past the route's limit
  // ends the relay: a peer that vanished without closing must not hold it open for ever.
  if (idleMs > 0) {
    client.setTimeout(idleMs, () => {
      client.destroy();
      upstream.destroy();
    });
  }
  upstream.pipe(client);
  client.pipe(upstream);
}
