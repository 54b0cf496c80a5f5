#!/usr/bin/env node
// Compiles the TypeScript sources into dist/ with `tsc -b`, which is incremental: when no source changed since the
// last build it only compares timestamps (under a second) instead of compiling everything again.
//   --clean         remove dist/ first (npm's `prepack`: a package never carries outputs of deleted sources)
//   --if-possible   without TypeScript installed (`npm ci --omit=dev` in a checkout), say so and succeed: npm runs
//                   this as `prepare` after every install in a checkout, and a production install must not fail
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
let tsc;
try {
  tsc = createRequire(path.join(root, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  if (args.has('--if-possible')) {
    console.error('kycgate: TypeScript is not installed (development dependencies omitted), dist/ was not built.');
    process.exit(0);
  }
  console.error('kycgate: TypeScript is not installed; run `npm install` (with development dependencies) first.');
  process.exit(1);
}
if (args.has('--clean')) rmSync(path.join(root, 'dist'), { recursive: true, force: true });
const run = spawnSync(process.execPath, [tsc, '-b', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
process.exit(run.status ?? 1);
