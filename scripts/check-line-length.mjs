#!/usr/bin/env node
// Fails when a source line is longer than 160 characters (the formatter wraps code at 120, but not the strings and
// comments it must leave as they are; those are wrapped by hand), and when a file of src/ other than a test is over
// 500 lines: a file that long holds more than one idea and is split.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const LIMIT = 160;
const MAX_FILE_LINES = 500;
const roots = ['src', 'testing', 'bench', 'deploy', 'scripts', 'dashboard'];
const long = [];
const large = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) walk(full);
    else if (/\.(ts|mjs)$/.test(name)) {
      const lines = readFileSync(full, 'utf8').split('\n');
      const count = lines.at(-1) === '' ? lines.length - 1 : lines.length;
      if (full.startsWith(`src${path.sep}`) && !name.endsWith('.test.ts') && count > MAX_FILE_LINES)
        large.push(`${full}: ${count} lines`);
      lines.forEach((line, i) => {
        if (line.length > LIMIT) long.push(`${full}:${i + 1}: ${line.length} characters`);
      });
    }
  }
}
for (const r of roots) walk(r);
if (long.length > 0) console.error(`lines over ${LIMIT} characters:\n${long.join('\n')}`);
if (large.length > 0) console.error(`files of src/ over ${MAX_FILE_LINES} lines (split them):\n${large.join('\n')}`);
if (long.length > 0 || large.length > 0) process.exit(1);
