/**
 * The dashboard's files on the admin listener: `/` (index.html) and `/assets/*`, built from dashboard/ by the
 * project's build (scripts/build.mjs, Vite) into dist/dashboard/ and shipped in the package. They are read once,
 * when the API starts, and served from memory; nothing is fetched from elsewhere at run time (the Content Security
 * Policy allows only this origin). The page signs in with an admin key and calls the admin API like any client.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { problem, sendProblem } from '../pipeline/problem.js';

/** dist/dashboard/, next to dist/src/ (this file runs as dist/src/admin/dashboard.js). */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../dashboard/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

const HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
};

interface File {
  body: Buffer;
  type: string;
  cache: string;
}

export class Dashboard {
  private readonly files = new Map<string, File>();

  /** Reads the built files; `available` is false when the build has not made them (a checkout without Vite). */
  constructor(dir = DASHBOARD_DIR) {
    const index = path.join(dir, 'index.html');
    if (!existsSync(index)) return;
    this.files.set('/', { body: readFileSync(index), type: TYPES['.html']!, cache: 'no-cache' });
    const assets = path.join(dir, 'assets');
    if (!existsSync(assets)) return;
    for (const name of readdirSync(assets)) {
      const type = TYPES[path.extname(name)];
      if (type === undefined) continue;
      // Asset names carry a content hash: they never change under the same name.
      this.files.set(`/assets/${name}`, {
        body: readFileSync(path.join(assets, name)),
        type,
        cache: 'public, max-age=31536000, immutable',
      });
    }
  }

  get available(): boolean {
    return this.files.has('/');
  }

  /** Answers `path` when it is one of the dashboard's files; false leaves the request to others. */
  serve(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    const file = this.files.get(path === '/index.html' ? '/' : path);
    if (file === undefined) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendProblem(res, problem('method-not-allowed', { headers: { allow: 'GET, HEAD' } }), undefined);
      return true;
    }
    res.writeHead(200, {
      'content-type': file.type,
      'content-length': file.body.length,
      'cache-control': file.cache,
      ...HEADERS,
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
    return true;
  }
}
