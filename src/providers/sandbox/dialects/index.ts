/** The dialects the sandbox speaks besides Didit's, by name. */
import type { SandboxDialect } from './dialect.js';
import { onfidoDialect } from './onfido.js';
import { personaDialect } from './persona.js';
import { sumsubDialect } from './sumsub.js';
import { veriffDialect } from './veriff.js';

export const DIALECTS: Readonly<Record<SandboxDialect['name'], SandboxDialect>> = {
  veriff: veriffDialect,
  onfido: onfidoDialect,
  sumsub: sumsubDialect,
  persona: personaDialect,
};
