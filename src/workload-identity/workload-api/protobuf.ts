/**
 * The few Workload API messages (spiffe/go-spiffe proto/spiffe/workload/workload.proto) encoded and decoded by
 * hand: the X.509 stream needs five fields, and a hand-written codec avoids shipping and loading a .proto file.
 * Unknown fields are skipped, as protobuf requires.
 */

export interface X509Svid {
  spiffeId: string;
  /** DER certificates, leaf first, concatenated. */
  certificatesDer: Buffer;
  /** PKCS#8 DER private key. */
  keyDer: Buffer;
  /** DER CA certificates of the SVID's own trust domain, concatenated. */
  bundleDer: Buffer;
  hint: string;
}

export interface X509SvidResponse {
  svids: X509Svid[];
  crl: Buffer[];
  /** Trust domain name (or `spiffe://` ID) to concatenated DER CA certificates. */
  federatedBundles: Map<string, Buffer>;
}

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const byte = this.buf[this.pos++]!;
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new Error('varint too long');
    }
  }

  bytes(): Buffer {
    const len = this.varint();
    if (this.pos + len > this.buf.length) throw new Error('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  skip(wireType: number): void {
    if (wireType === VARINT) this.varint();
    else if (wireType === FIXED64) this.pos += 8;
    else if (wireType === LENGTH_DELIMITED) this.bytes();
    else if (wireType === FIXED32) this.pos += 4;
    else throw new Error(`unsupported wire type ${wireType}`);
  }

  /** Calls `field` for each (number, wireType) until the end. */
  fields(field: (num: number, wireType: number) => void): void {
    while (!this.done) {
      const tag = this.varint();
      field(Math.floor(tag / 8), tag & 7);
    }
  }
}

function decodeSvid(buf: Buffer): X509Svid {
  const r = new Reader(buf);
  const svid: X509Svid = {
    spiffeId: '',
    certificatesDer: Buffer.alloc(0),
    keyDer: Buffer.alloc(0),
    bundleDer: Buffer.alloc(0),
    hint: '',
  };
  r.fields((num, wt) => {
    if (wt !== LENGTH_DELIMITED) return r.skip(wt);
    const value = r.bytes();
    if (num === 1) svid.spiffeId = value.toString('utf8');
    else if (num === 2) svid.certificatesDer = Buffer.from(value);
    else if (num === 3) svid.keyDer = Buffer.from(value);
    else if (num === 4) svid.bundleDer = Buffer.from(value);
    else if (num === 5) svid.hint = value.toString('utf8');
  });
  return svid;
}

function decodeMapEntry(buf: Buffer): [string, Buffer] {
  const r = new Reader(buf);
  let key = '';
  let value = Buffer.alloc(0);
  r.fields((num, wt) => {
    if (wt !== LENGTH_DELIMITED) return r.skip(wt);
    const v = r.bytes();
    if (num === 1) key = v.toString('utf8');
    else if (num === 2) value = Buffer.from(v);
  });
  return [key, value];
}

export function decodeX509SvidResponse(buf: Buffer): X509SvidResponse {
  const r = new Reader(buf);
  const out: X509SvidResponse = { svids: [], crl: [], federatedBundles: new Map() };
  r.fields((num, wt) => {
    if (wt !== LENGTH_DELIMITED) return r.skip(wt);
    const value = r.bytes();
    if (num === 1) out.svids.push(decodeSvid(value));
    else if (num === 2) out.crl.push(Buffer.from(value));
    else if (num === 3) {
      const [k, v] = decodeMapEntry(value);
      out.federatedBundles.set(k, v);
    }
  });
  return out;
}

/** JWTBundlesResponse: trust domain to its JWT bundle (a JWK Set document). */
export function decodeJwtBundlesResponse(buf: Buffer): Map<string, Buffer> {
  const r = new Reader(buf);
  const out = new Map<string, Buffer>();
  r.fields((num, wt) => {
    if (wt !== LENGTH_DELIMITED) return r.skip(wt);
    const value = r.bytes();
    if (num === 1) {
      const [k, v] = decodeMapEntry(value);
      out.set(k, v);
    }
  });
  return out;
}

export interface JwtSvid {
  spiffeId: string;
  /** The JWT-SVID, JWS compact. */
  svid: string;
  hint: string;
}

export function decodeJwtSvidResponse(buf: Buffer): JwtSvid[] {
  const r = new Reader(buf);
  const out: JwtSvid[] = [];
  r.fields((num, wt) => {
    if (wt !== LENGTH_DELIMITED) return r.skip(wt);
    const value = r.bytes();
    if (num !== 1) return;
    const inner = new Reader(value);
    const svid: JwtSvid = { spiffeId: '', svid: '', hint: '' };
    inner.fields((n, w) => {
      if (w !== LENGTH_DELIMITED) return inner.skip(w);
      const v = inner.bytes().toString('utf8');
      if (n === 1) svid.spiffeId = v;
      else if (n === 2) svid.svid = v;
      else if (n === 3) svid.hint = v;
    });
    out.push(svid);
  });
  return out;
}

/** JWTSVIDRequest {audience = 1 (repeated), spiffe_id = 2}. */
export function decodeJwtSvidRequest(buf: Buffer): { audience: string[]; spiffeId: string } {
  const r = new Reader(buf);
  const out = { audience: [] as string[], spiffeId: '' };
  r.fields((num, wt) => {
    if (wt !== LENGTH_DELIMITED) return r.skip(wt);
    const v = r.bytes().toString('utf8');
    if (num === 1) out.audience.push(v);
    else if (num === 2) out.spiffeId = v;
  });
  return out;
}

// Encoding: used by the tests' Workload API server (and kept beside the decoder so both stay in step).

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n > 127) {
    bytes.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

function field(num: number, value: Buffer | string): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([varint(num * 8 + LENGTH_DELIMITED), varint(v.length), v]);
}

export function encodeX509SvidResponse(msg: X509SvidResponse): Buffer {
  const parts: Buffer[] = [];
  for (const s of msg.svids) {
    parts.push(
      field(
        1,
        Buffer.concat([
          field(1, s.spiffeId),
          field(2, s.certificatesDer),
          field(3, s.keyDer),
          field(4, s.bundleDer),
          ...(s.hint ? [field(5, s.hint)] : []),
        ]),
      ),
    );
  }
  for (const c of msg.crl) parts.push(field(2, c));
  for (const [k, v] of msg.federatedBundles) parts.push(field(3, Buffer.concat([field(1, k), field(2, v)])));
  return Buffer.concat(parts);
}

export function encodeJwtBundlesResponse(bundles: Map<string, Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of bundles) parts.push(field(1, Buffer.concat([field(1, k), field(2, v)])));
  return Buffer.concat(parts);
}

export function encodeJwtSvidRequest(req: { audience: string[]; spiffeId?: string }): Buffer {
  return Buffer.concat([...req.audience.map((a) => field(1, a)), ...(req.spiffeId ? [field(2, req.spiffeId)] : [])]);
}

export function encodeJwtSvidResponse(svids: JwtSvid[]): Buffer {
  return Buffer.concat(
    svids.map((s) =>
      field(1, Buffer.concat([field(1, s.spiffeId), field(2, s.svid), ...(s.hint ? [field(3, s.hint)] : [])])),
    ),
  );
}

/** Splits concatenated DER certificates (each a SEQUENCE with a definite length). */
export function splitDerCertificates(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (buf[pos] !== 0x30 || pos + 2 > buf.length) throw new Error('not a DER certificate sequence');
    let len = buf[pos + 1]!;
    let header = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4 || pos + 2 + n > buf.length) throw new Error('unsupported DER length');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + buf[pos + 2 + i]!;
      header = 2 + n;
    }
    const end = pos + header + len;
    if (end > buf.length) throw new Error('truncated DER certificate');
    out.push(buf.subarray(pos, end));
    pos = end;
  }
  return out;
}
