#!/usr/bin/env node
// Fails when a source line is longer than 160 characters: the formatter wraps code at 120, but not the strings and
// comments it must leave as they are; those are wrapped by hand.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const LIMIT = 160;
const roots = ['src', 'testing', 'bench', 'deploy', 'scripts', 'dashboard'];
const long = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) walk(full);
    else if (/\.(ts|mjs)$/.test(name)) {
      readFileSync(full, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (line.length > LIMIT) long.push(`${full}:${i + 1}: ${line.length} characters`);
        });
    }
  }
}
for (const r of roots) walk(r);
if (long.length > 0) {
  console.error(`lines over ${LIMIT} characters:\n${long.join('\n')}`);
  process.exit(1);
}
