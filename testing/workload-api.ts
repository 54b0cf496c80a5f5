/**
 * A SPIFFE Workload API server for tests: serves FetchX509SVID over a unix socket with SVIDs issued at run time
 * from a test CA, and lets a test rotate them, deny the workload or drop the stream.
 */
import path from 'node:path';
import { createPrivateKey } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { IssuedCertificate } from '../src/workload-identity/certificates.js';
import {
  encodeX509SvidResponse,
  decodeX509SvidResponse,
  encodeJwtBundlesResponse,
  decodeJwtBundlesResponse,
  encodeJwtSvidRequest,
  decodeJwtSvidRequest,
  encodeJwtSvidResponse,
  decodeJwtSvidResponse,
  type JwtSvid,
  type X509SvidResponse,
  type X509Svid,
} from '../src/workload-identity/workload-api/protobuf.js';
import { FETCH_JWT_BUNDLES } from '../src/workload-identity/workload-api/jwt-bundle-source.js';
import { FETCH_JWT_SVID } from '../src/workload-identity/workload-api/jwt-svid.js';
import { FETCH_X509_SVID, WORKLOAD_METADATA_KEY } from '../src/workload-identity/workload-api/x509-source.js';
import { issueSvid } from './spiffe.js';

/** An X509SVID message for a freshly issued SVID valid for `ttlMs`. */
export async function svidMessage(
  ca: IssuedCertificate,
  spiffeId: string,
  ttlMs = 3600_000,
): Promise<{ svid: X509Svid; issued: IssuedCertificate }> {
  const issued = await issueSvid(ca, spiffeId, {
    dns: ['localhost'],
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + ttlMs),
  });
  const keyDer = createPrivateKey(issued.keyPem).export({ format: 'der', type: 'pkcs8' });
  return {
    issued,
    svid: {
      spiffeId,
      certificatesDer: Buffer.from(issued.cert.rawData),
      keyDer,
      bundleDer: Buffer.from(ca.cert.rawData),
      hint: '',
    },
  };
}

export class TestWorkloadApi {
  private readonly server = new grpc.Server();
  private readonly streams = new Set<grpc.ServerWritableStream<Buffer, X509SvidResponse>>();
  private readonly jwtStreams = new Set<grpc.ServerWritableStream<Buffer, Map<string, Buffer>>>();
  /** JWT bundles (trust domain to JWK Set JSON) served on FetchJWTBundles. */
  jwtBundles = new Map<string, Buffer>();
  /** Mints the JWT-SVIDs answered on FetchJWTSVID. */
  mintJwt: ((audience: string[], spiffeId: string) => Promise<JwtSvid[]>) | undefined;
  jwtRequests: Array<{ audience: string[]; spiffeId: string }> = [];
  address = '';
  /** FetchX509SVID calls received, and how many lacked the security header. */
  calls = 0;
  missingHeader = 0;
  /** What the next call gets: the state, PermissionDenied or Unimplemented. */
  mode: 'serve' | 'deny' | 'unimplemented' = 'serve';
  state: X509SvidResponse = { svids: [], crl: [], federatedBundles: new Map() };

  async start(dir: string): Promise<void> {
    const definition: grpc.ServiceDefinition = {
      FetchX509SVID: {
        path: FETCH_X509_SVID,
        requestStream: false,
        responseStream: true,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: encodeX509SvidResponse,
        responseDeserialize: decodeX509SvidResponse,
      },
      FetchJWTSVID: {
        path: FETCH_JWT_SVID,
        requestStream: false,
        responseStream: false,
        requestSerialize: encodeJwtSvidRequest,
        requestDeserialize: decodeJwtSvidRequest,
        responseSerialize: encodeJwtSvidResponse,
        responseDeserialize: decodeJwtSvidResponse,
      },
      FetchJWTBundles: {
        path: FETCH_JWT_BUNDLES,
        requestStream: false,
        responseStream: true,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: encodeJwtBundlesResponse,
        responseDeserialize: decodeJwtBundlesResponse,
      },
    };
    this.server.addService(definition, {
      FetchX509SVID: (call: grpc.ServerWritableStream<Buffer, X509SvidResponse>) => {
        this.calls++;
        if (call.metadata.get(WORKLOAD_METADATA_KEY)[0] !== 'true') {
          this.missingHeader++;
          call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'security header missing from request' });
          return;
        }
        if (this.mode === 'deny')
          return call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: 'no identity issued' });
        if (this.mode === 'unimplemented')
          return call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'not here' });
        this.streams.add(call);
        call.on('cancelled', () => this.streams.delete(call));
        call.write(this.state);
      },
      FetchJWTSVID: (
        call: grpc.ServerUnaryCall<{ audience: string[]; spiffeId: string }, JwtSvid[]>,
        callback: grpc.sendUnaryData<JwtSvid[]>,
      ) => {
        this.calls++;
        if (call.metadata.get(WORKLOAD_METADATA_KEY)[0] !== 'true') {
          this.missingHeader++;
          return callback({ code: grpc.status.INVALID_ARGUMENT, details: 'security header missing from request' });
        }
        if (this.mode !== 'serve' || !this.mintJwt)
          return callback({ code: grpc.status.PERMISSION_DENIED, details: 'no identity issued' });
        this.jwtRequests.push(call.request);
        this.mintJwt(call.request.audience, call.request.spiffeId).then(
          (svids) => callback(null, svids),
          () => callback({ code: grpc.status.INTERNAL, details: 'mint failed' }),
        );
      },
      FetchJWTBundles: (call: grpc.ServerWritableStream<Buffer, Map<string, Buffer>>) => {
        this.calls++;
        if (call.metadata.get(WORKLOAD_METADATA_KEY)[0] !== 'true') {
          this.missingHeader++;
          call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'security header missing from request' });
          return;
        }
        if (this.mode === 'deny')
          return call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: 'no identity issued' });
        this.jwtStreams.add(call);
        call.on('cancelled', () => this.jwtStreams.delete(call));
        call.write(this.jwtBundles);
      },
    });
    const socket = path.join(dir, 'agent.sock');
    await new Promise<void>((resolve, reject) =>
      this.server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    this.address = `unix://${socket}`;
  }

  /** Replaces the state and sends it on every open stream (as an agent does on rotation). */
  push(state: X509SvidResponse): void {
    this.state = state;
    for (const s of this.streams) s.write(state);
  }

  /** Replaces the JWT bundles and sends them on every open FetchJWTBundles stream. */
  pushJwtBundles(bundles: Map<string, Buffer>): void {
    this.jwtBundles = bundles;
    for (const s of this.jwtStreams) s.write(bundles);
  }

  /** Ends every open stream with `code` (e.g. UNAVAILABLE, PERMISSION_DENIED). */
  fail(code: grpc.status): void {
    for (const s of [...this.streams, ...this.jwtStreams]) s.emit('error', { code, details: 'test' });
    this.streams.clear();
    this.jwtStreams.clear();
  }

  get openStreams(): number {
    return this.streams.size;
  }

  close(): Promise<void> {
    for (const s of [...this.streams, ...this.jwtStreams]) s.end();
    this.streams.clear();
    this.jwtStreams.clear();
    return new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }
}
