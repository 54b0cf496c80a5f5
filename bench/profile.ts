/** Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function, largest first. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/**
 * Work done on behalf of one of kycgate's own parts, by the stack rather than the sampled function: the audit
 * trail's SHA-256 and file writes run in Node's crypto and fs code, a policy's header validation in undici's.
 * Undefined when no frame of the stack is in such a part (then the sampled function's component decides).
 */
function ownPart(stack: readonly ProfileNode[]): string | undefined {
  for (const node of stack) {
    const url = node.callFrame.url;
    if (url.includes('/dist/src/audit/')) return 'kycgate: audit trail (record copy, serialising, SHA-256, writes)';
    const policy = /\/dist\/src\/policies\/([a-z0-9-]+)\//.exec(url);
    if (policy) return `kycgate: policy ${policy[1]}`;
  }
  return undefined;
}

export interface SelfTime {
  name: string;
  location: string;
  ms: number;
  share: number;
}

/** Which part of the stack a sampled function belongs to, for the per-component summary. */
function component(functionName: string, url: string): string | undefined {
  if (functionName === '(idle)') return undefined;
  if (functionName === 'writeString') return 'file writes (access log fs.write; includes time preempted there)';
  if (
    ['writev', 'writeLatin1String', 'writeUtf8String', 'writeBuffer'].includes(functionName) ||
    url.includes('stream_base_commons')
  ) {
    return 'socket writes (TLS encryption included)';
  }
  if (url.includes('/dist/src/')) return 'kycgate code';
  if (url.includes('undici') || url.startsWith('wasm')) return 'undici (upstream client)';
  if (url.includes('pino') || url.includes('sonic-boom') || url.includes('redact')) return 'pino (log formatting)';
  if (functionName === '(garbage collector)') return 'garbage collection';
  if (functionName === '(program)') return 'native, unattributed';
  if (url.includes('_http_')) return 'node:http server';
  if (
    url.includes('subsystems/') ||
    url.includes('/dist/compile') ||
    url.includes('ajv') ||
    url.includes('yaml') ||
    functionName === 'wrapSafe'
  ) {
    return 'start-up (module loading, schema compilation)';
  }
  if (url.startsWith('node:')) return 'other Node core (streams, events, net, timers)';
  return 'other';
}

export function summariseProfile(
  file: string,
  top = 25,
): { totalMs: number; rows: SelfTime[]; categories: Array<{ name: string; share: number }> } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: ProfileNode[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n);
  const partOf = new Map<number, string | undefined>();
  const stackPart = (node: ProfileNode): string | undefined => {
    if (partOf.has(node.id)) return partOf.get(node.id);
    const stack: ProfileNode[] = [];
    for (let n: ProfileNode | undefined = node; n !== undefined; n = parentOf.get(n.id)) stack.push(n);
    const part = ownPart(stack);
    partOf.set(node.id, part);
    return part;
  };
  const selfUs = new Map<string, { name: string; location: string; us: number }>();
  let totalUs = 0;
  let busyUs = 0;
  const byComponent = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!)!;
    const dt = profile.timeDeltas[i] ?? 0;
    totalUs += dt;
    const f = node.callFrame;
    const self = component(f.functionName, f.url);
    // Garbage collection and idle time have no stack of their own: they stay what they are.
    const part = self === undefined || self === 'garbage collection' ? self : (stackPart(node) ?? self);
    if (part !== undefined) {
      busyUs += dt;
      byComponent.set(part, (byComponent.get(part) ?? 0) + dt);
    }
    const location =
      f.url === ''
        ? ''
        : `${f.url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^node:/, 'node:')}:${f.lineNumber + 1}`;
    const key = `${f.functionName}|${location}`;
    const entry = selfUs.get(key) ?? { name: f.functionName || '(anonymous)', location, us: 0 };
    entry.us += dt;
    selfUs.set(key, entry);
  }
  const rows = [...selfUs.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ name: e.name, location: e.location, ms: e.us / 1000, share: e.us / totalUs }));
  const categories = [...byComponent].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, share: us / busyUs }));
  return { totalMs: totalUs / 1000, rows, categories };
}
