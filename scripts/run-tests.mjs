#!/usr/bin/env node
// Runs every compiled test file (dist/**/*.test.js) with Node's test runner. Test files are listed explicitly so
// the same command works on Node 20, 22 and 24 (their directory and glob handling differ).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';

function find(dir, out) {
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) find(full, out);
    else if (name.endsWith('.test.js')) out.push(full);
  }
  return out;
}

const filter = process.argv.slice(2);
// tsc never deletes outputs: a compiled test whose source was removed or renamed would keep running. Only tests with
// a source file (dist/x/y.test.js from x/y.test.ts) are run.
let files = find('dist', [])
  .filter((f) => existsSync(path.relative('dist', f).replace(/\.js$/, '.ts')))
  .sort();
if (filter.length > 0) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files found under dist/ (did the build run?)');
  process.exit(1);
}
const concurrency = process.env.KYCGATE_TEST_CONCURRENCY ?? '4';
const child = spawn(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
