/**
 * Reading an HTTP response body from a server we do not control (verification providers, authorization servers, JWKS
 * endpoints) with a size bound that holds while reading: the read stops, and the stream is cancelled, as soon as
 * the body passes the bound, so an oversized or endless answer cannot fill memory. Works on undici bodies and on
 * fetch() streams alike.
 */
export class ResponseTooLarge extends Error {
  readonly code = 'RESPONSE_TOO_LARGE';
  constructor(readonly maxBytes: number) {
    super(`response body larger than ${maxBytes} bytes`);
  }
}

export async function readBounded(
  body: AsyncIterable<Uint8Array> | null | undefined,
  maxBytes: number,
): Promise<string> {
  if (body === null || body === undefined) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    // Leaving the loop early cancels the stream: nothing more is read.
    if (size > maxBytes) throw new ResponseTooLarge(maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}
