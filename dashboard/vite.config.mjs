// The dashboard's build: dashboard/ → dist/dashboard/ (index.html and hashed assets), served by the admin listener.
// `node scripts/build.mjs` runs it; `npx vite --config dashboard/vite.config.mjs` serves it for development against a
// gateway whose admin listener is on 127.0.0.1:9901 (`npm start`).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export default {
  root: here,
  base: '/',
  logLevel: 'warn',
  publicDir: false,
  build: {
    outDir: path.resolve(here, '../dist/dashboard'),
    emptyOutDir: true,
    target: 'es2022',
    // Nothing inlined as data: URLs or inline scripts: the page runs under a CSP that allows only its own files.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    port: 5173,
    strictPort: true,
    proxy: { '/admin/api': 'http://127.0.0.1:9901' },
  },
};
