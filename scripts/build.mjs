#!/usr/bin/env node
// Compiles the TypeScript sources into dist/ with `tsc -b`, which is incremental: when no source changed since the
// last build it only compares timestamps (under a second) instead of compiling everything again. Then builds the
// dashboard (dashboard/ → dist/dashboard/, Vite) when a file under dashboard/ is newer than the last build, after
// type-checking it (its own tsconfig: DOM types, no emit).
//   --clean         remove dist/ first (npm's `prepack`: a package never carries outputs of deleted sources)
//   --if-possible   without TypeScript installed (`npm ci --omit=dev` in a checkout), say so and succeed: npm runs
//                   this as `prepare` after every install in a checkout, and a production install must not fail
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

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
if (run.status !== 0) process.exit(run.status ?? 1);
process.exit(await buildDashboard());

/** Newest modification time of the files under `dir`. */
function newest(dir) {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(full) : statSync(full).mtimeMs);
  }
  return t;
}

async function buildDashboard() {
  const source = path.join(root, 'dashboard');
  const built = path.join(root, 'dist', 'dashboard', 'index.html');
  const inputs = Math.max(newest(source), statSync(path.join(root, 'package-lock.json')).mtimeMs);
  if (existsSync(built) && statSync(built).mtimeMs >= inputs) return 0;
  let vite;
  try {
    vite = createRequire(path.join(root, 'package.json')).resolve('vite');
  } catch {
    console.error('kycgate: Vite is not installed (development dependencies omitted), the dashboard was not built.');
    return args.has('--if-possible') ? 0 : 1;
  }
  const check = spawnSync(process.execPath, [tsc, '-p', path.join(source, 'tsconfig.json')], { stdio: 'inherit' });
  if (check.status !== 0) return check.status ?? 1;
  const { build } = await import(pathToFileURL(vite).href);
  await build({ configFile: path.join(source, 'vite.config.mjs') });
  return 0;
}
