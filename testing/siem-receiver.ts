import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP receiver standing in for a SIEM collector; `failing` makes it answer 503, `refuse` answers that status,
 * and batches of more than `maxBatch` records are refused with 413.
 */
export async function startReceiver() {
  const state = {
    failing: false,
    refuse: undefined as number | undefined,
    maxBatch: Infinity,
    batches: 0,
    largest: 0,
    /**
     * 413 answers given after a batch was accepted following an earlier 413: the sink shrank, found a size that
     * passes, and then grew back. (A small batch accepted before any 413, because only a few records were committed
     * yet, is not a shrink and does not count.)
     */
    tooLargeAfterAccepted: 0,
    sawTooLarge: false,
    acceptedAfterTooLarge: false,
    records: [] as Array<Record<string, unknown>>,
    authorization: [] as string[],
    waiters: [] as Array<() => void>,
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (state.failing || state.refuse !== undefined) {
        res.writeHead(state.refuse ?? 503).end();
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      const batch = req.url === '/v1/traces' ? [] : (JSON.parse(body) as Array<Record<string, unknown>>);
      if (batch.length > state.maxBatch) {
        if (state.acceptedAfterTooLarge) state.tooLargeAfterAccepted++;
        state.sawTooLarge = true;
        res.writeHead(413).end();
        return;
      }
      if (state.sawTooLarge) state.acceptedAfterTooLarge = true;
      state.batches++;
      state.largest = Math.max(state.largest, batch.length);
      state.authorization.push(String(req.headers.authorization));
      if (req.url === '/v1/traces') state.records.push({ otlp: body });
      else for (const r of batch) state.records.push(r);
      res.writeHead(204).end();
      for (const w of state.waiters.splice(0)) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    state,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Resolves once `predicate` holds, re-checked on every batch received (bounded by `ms`). */
    async until(predicate: () => boolean, ms = 15000): Promise<void> {
      const deadline = Date.now() + ms;
      while (!predicate()) {
        if (Date.now() > deadline) throw new Error('receiver: condition not met in time');
        await new Promise<void>((r) => {
          state.waiters.push(r);
          setTimeout(r, 200);
        });
      }
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
