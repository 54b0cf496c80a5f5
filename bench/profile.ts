/** Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function, largest first. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

export interface SelfTime {
  name: string;
  location: string;
  ms: number;
  share: number;
}

export function summariseProfile(file: string, top = 25): { totalMs: number; rows: SelfTime[] } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, { name: string; location: string; us: number }>();
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!)!;
    const dt = profile.timeDeltas[i] ?? 0;
    totalUs += dt;
    const f = node.callFrame;
    const location = f.url === '' ? '' : `${f.url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^node:/, 'node:')}:${f.lineNumber + 1}`;
    const key = `${f.functionName}|${location}`;
    const entry = selfUs.get(key) ?? { name: f.functionName || '(anonymous)', location, us: 0 };
    entry.us += dt;
    selfUs.set(key, entry);
  }
  const rows = [...selfUs.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ name: e.name, location: e.location, ms: e.us / 1000, share: e.us / totalUs }));
  return { totalMs: totalUs / 1000, rows };
}
