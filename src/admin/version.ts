/** kycgate's version, from its package.json (in the OpenAPI document, the instances list and CEF exports). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const VERSION: string = (
  JSON.parse(
    readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../../package.json'), 'utf8'),
  ) as { version: string }
).version;
