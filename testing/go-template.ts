/**
 * Renders the kycgate Helm chart (deploy/helm/kycgate) without Helm, for tests: Helm is not packaged for this
 * machine (no Debian package, no npm package implementing Helm's templates).
 *
 * It implements the subset of Go's text/template and of Helm's functions that the chart uses, with Go's semantics:
 * actions `{{ }}` with `{{-`/`-}}` whitespace trimming and comments; `if`/`else if`/`else`/`end`, `with`/`else`,
 * `define`; pipelines with `|`, parenthesised sub-expressions, `.` field chains, `$`, string, number and boolean
 * literals; truthiness as in Go (false, 0, nil, empty string, list or map are false); and the functions include,
 * toYaml, indent, nindent, quote, default, printf (%s %d %v), trunc, trimSuffix, contains, eq, ne, and, or, not,
 * sha256sum and required. Anything else (`range`, variables, another function) is an error rather than ignored, so
 * a template this renderer cannot follow fails the test instead of rendering wrongly. It is stricter than Helm in
 * one way: printing a value that is missing is an error (Helm prints nothing), which catches misspelt value paths.
 * toYaml writes the same data as Helm's (keys sorted, lists not indented), not necessarily the same bytes.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

type Value = unknown;

type Expr =
  | { kind: 'field'; root: 'dot' | 'dollar'; path: string[] }
  | { kind: 'literal'; value: Value }
  | { kind: 'call'; name: string }
  | { kind: 'pipe'; pipe: Pipeline };
type Command = Expr[];
type Pipeline = Command[];

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'print'; pipe: Pipeline }
  | { kind: 'if'; branches: Array<{ cond: Pipeline; body: Node[] }>; otherwise: Node[] }
  | { kind: 'with'; pipe: Pipeline; body: Node[]; otherwise: Node[] };

interface Token {
  text?: string;
  action?: string;
  where: string;
}

/** Splits a template into text and action tokens, applying the trim markers. */
function lex(source: string, name: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  let trimNext = false;
  while (pos < source.length) {
    const open = source.indexOf('{{', pos);
    let text = source.slice(pos, open === -1 ? source.length : open);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (open === -1) {
      if (text) tokens.push({ text, where: name });
      break;
    }
    const close = source.indexOf('}}', open);
    if (close === -1) throw new Error(`${name}: unclosed action`);
    let inner = source.slice(open + 2, close);
    const line = source.slice(0, open).split('\n').length;
    if (inner.startsWith('- ') || inner.startsWith('-\n')) {
      text = text.replace(/\s+$/, '');
      inner = inner.slice(1);
    }
    trimNext = false;
    if (inner.endsWith(' -') || inner.endsWith('\n-')) {
      trimNext = true;
      inner = inner.slice(0, -1);
    }
    if (text) tokens.push({ text, where: name });
    inner = inner.trim();
    if (!(inner.startsWith('/*') && inner.endsWith('*/'))) tokens.push({ action: inner, where: `${name}:${line}` });
    pos = close + 2;
  }
  return tokens;
}

/** Splits an action into words: strings, parentheses, pipes and everything else. */
function words(action: string, where: string): string[] {
  const out: string[] = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\(|\)|\||[^\s()|"`]+)/y;
  let m: RegExpExecArray | null;
  while (re.lastIndex < action.length && (m = re.exec(action)) !== null) out.push(m[1]!);
  if (re.lastIndex < action.trimEnd().length) throw new Error(`${where}: cannot read "${action}"`);
  return out;
}

function parsePipeline(ws: string[], where: string): Pipeline {
  let i = 0;
  const pipeline = (): Pipeline => {
    const commands: Pipeline = [[]];
    while (i < ws.length && ws[i] !== ')') {
      const w = ws[i++]!;
      if (w === '|') {
        if (commands[commands.length - 1]!.length === 0) throw new Error(`${where}: empty command in pipeline`);
        commands.push([]);
      } else if (w === '(') {
        const inner = pipeline();
        if (ws[i++] !== ')') throw new Error(`${where}: unclosed (`);
        commands[commands.length - 1]!.push({ kind: 'pipe', pipe: inner });
      } else commands[commands.length - 1]!.push(operand(w));
    }
    if (commands[commands.length - 1]!.length === 0) throw new Error(`${where}: empty command in pipeline`);
    return commands;
  };
  const operand = (w: string): Expr => {
    if (w.startsWith('"')) return { kind: 'literal', value: JSON.parse(w) };
    if (w.startsWith('`')) return { kind: 'literal', value: w.slice(1, -1) };
    if (/^-?\d+(\.\d+)?$/.test(w)) return { kind: 'literal', value: Number(w) };
    if (w === 'true' || w === 'false') return { kind: 'literal', value: w === 'true' };
    if (w === 'nil') return { kind: 'literal', value: null };
    if (w === '.') return { kind: 'field', root: 'dot', path: [] };
    if (/^(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(w)) return { kind: 'field', root: 'dot', path: w.slice(1).split('.') };
    if (w === '$') return { kind: 'field', root: 'dollar', path: [] };
    if (/^\$(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(w))
      return { kind: 'field', root: 'dollar', path: w.slice(2).split('.') };
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(w)) return { kind: 'call', name: w };
    throw new Error(`${where}: unsupported operand "${w}" (variables and methods are not implemented)`);
  };
  const result = pipeline();
  if (i !== ws.length) throw new Error(`${where}: unexpected )`);
  return result;
}

function parse(tokens: Token[], defines: Map<string, Node[]>): Node[] {
  let i = 0;
  const list = (ends: string[]): { nodes: Node[]; end: string; where: string } => {
    const nodes: Node[] = [];
    while (i < tokens.length) {
      const t = tokens[i++]!;
      if (t.text !== undefined) {
        nodes.push({ kind: 'text', text: t.text });
        continue;
      }
      const ws = words(t.action!, t.where);
      const keyword = ws[0];
      if (keyword === 'end' || keyword === 'else') {
        if (!ends.includes(keyword)) throw new Error(`${t.where}: unexpected {{${keyword}}}`);
        return { nodes, end: t.action!, where: t.where };
      }
      if (keyword === 'if') {
        const branches: Array<{ cond: Pipeline; body: Node[] }> = [];
        let cond = parsePipeline(ws.slice(1), t.where);
        let otherwise: Node[] = [];
        for (;;) {
          const r = list(['end', 'else']);
          branches.push({ cond, body: r.nodes });
          if (r.end === 'end') break;
          const elseWords = words(r.end, r.where);
          if (elseWords[1] === 'if') {
            cond = parsePipeline(elseWords.slice(2), r.where);
            continue;
          }
          if (elseWords.length > 1) throw new Error(`${r.where}: unsupported "${r.end}"`);
          const rest = list(['end']);
          otherwise = rest.nodes;
          break;
        }
        nodes.push({ kind: 'if', branches, otherwise });
      } else if (keyword === 'with') {
        const pipe = parsePipeline(ws.slice(1), t.where);
        const r = list(['end', 'else']);
        let otherwise: Node[] = [];
        if (r.end !== 'end') {
          if (r.end.trim() !== 'else') throw new Error(`${r.where}: unsupported "${r.end}" in with`);
          otherwise = list(['end']).nodes;
        }
        nodes.push({ kind: 'with', pipe, body: r.nodes, otherwise });
      } else if (keyword === 'define') {
        const name = JSON.parse(ws[1] ?? '""') as string;
        if (!name || ws.length !== 2) throw new Error(`${t.where}: define needs one quoted name`);
        defines.set(name, list(['end']).nodes);
      } else if (
        keyword === 'range' ||
        keyword === 'template' ||
        keyword === 'block' ||
        keyword === 'break' ||
        keyword === 'continue'
      ) {
        throw new Error(`${t.where}: {{${keyword}}} is not implemented by this renderer`);
      } else {
        nodes.push({ kind: 'print', pipe: parsePipeline(ws, t.where) });
      }
    }
    if (ends.length > 0) throw new Error(`missing {{end}}`);
    return { nodes, end: '', where: '' };
  };
  return list([]).nodes;
}

function truthy(v: Value): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

function toText(v: Value, where: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === undefined || v === null) throw new Error(`${where}: printing a missing value (misspelt value path?)`);
  throw new Error(`${where}: printing a ${Array.isArray(v) ? 'list' : 'map'} (use toYaml)`);
}

function goQuote(s: string): string {
  return JSON.stringify(s);
}

export function toYaml(v: Value): string {
  if (v === undefined || v === null) return 'null';
  return YAML.stringify(v, { indentSeq: false, sortMapEntries: true, lineWidth: 0 }).replace(/\n$/, '');
}

function indentLines(n: number, s: string): string {
  const pad = ' '.repeat(n);
  return s
    .split('\n')
    .map((l) => pad + l)
    .join('\n');
}

class Renderer {
  constructor(
    private readonly defines: Map<string, Node[]>,
    private readonly root: Value,
  ) {}

  private readonly functions: Record<string, (where: string, ...args: Value[]) => Value> = {
    include: (where, name, data) => {
      const body = this.defines.get(name as string);
      if (!body) throw new Error(`${where}: no template named "${String(name)}"`);
      return this.nodes(body, data);
    },
    toYaml: (_w, v) => toYaml(v),
    indent: (w, n, s) => indentLines(n as number, toText(s, w)),
    nindent: (w, n, s) => '\n' + indentLines(n as number, toText(s, w)),
    quote: (w, ...args) => args.map((a) => goQuote(a === undefined || a === null ? '' : toText(a, w))).join(' '),
    default: (_w, fallback, v) => (truthy(v) ? v : fallback),
    printf: (w, format, ...args) => {
      let k = 0;
      return (format as string).replace(/%([sdv%])/g, (_m, verb: string) =>
        verb === '%' ? '%' : toText(args[k++], w),
      );
    },
    trunc: (w, n, s) => toText(s, w).slice(0, n as number),
    trimSuffix: (w, suffix, s) => {
      const str = toText(s, w);
      return str.endsWith(suffix as string) ? str.slice(0, str.length - (suffix as string).length) : str;
    },
    contains: (w, sub, s) => toText(s, w).includes(toText(sub, w)),
    eq: (_w, a, ...others) => others.some((o) => o === a),
    ne: (_w, a, b) => a !== b,
    and: (_w, ...args) => args.find((a) => !truthy(a)) ?? args[args.length - 1],
    or: (_w, ...args) => args.find((a) => truthy(a)) ?? args[args.length - 1],
    not: (_w, v) => !truthy(v),
    sha256sum: (w, s) => createHash('sha256').update(toText(s, w)).digest('hex'),
    required: (w, message, v) => {
      if (!truthy(v) && v !== false && v !== 0) throw new Error(`${w}: ${String(message)}`);
      return v;
    },
  };

  private field(base: Value, keys: string[], where: string): Value {
    let v = base;
    for (const key of keys) {
      if (v === undefined || v === null) throw new Error(`${where}: nil pointer evaluating .${key}`);
      if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where}: .${key} of a ${typeof v}`);
      v = (v as Record<string, Value>)[key];
    }
    return v;
  }

  private expr(e: Expr, dot: Value, where: string): Value {
    switch (e.kind) {
      case 'literal':
        return e.value;
      case 'field':
        return this.field(e.root === 'dot' ? dot : this.root, e.path, where);
      case 'pipe':
        return this.pipeline(e.pipe, dot, where);
      case 'call':
        return this.call(e.name, [], dot, where);
    }
  }

  private call(name: string, args: Value[], _dot: Value, where: string): Value {
    const fn = this.functions[name];
    if (!fn) throw new Error(`${where}: function "${name}" is not implemented by this renderer`);
    return fn(where, ...args);
  }

  pipeline(pipe: Pipeline, dot: Value, where: string): Value {
    let piped: { value: Value } | undefined;
    for (const command of pipe) {
      const [head, ...rest] = command;
      if (head!.kind === 'call') {
        const args = rest.map((a) => this.expr(a, dot, where));
        if (piped) args.push(piped.value);
        piped = { value: this.call(head!.name, args, dot, where) };
      } else {
        if (rest.length > 0 || piped) throw new Error(`${where}: arguments given to a value that is not a function`);
        piped = { value: this.expr(head!, dot, where) };
      }
    }
    return piped!.value;
  }

  nodes(nodes: Node[], dot: Value): string {
    let out = '';
    for (const n of nodes) {
      switch (n.kind) {
        case 'text':
          out += n.text;
          break;
        case 'print':
          out += toText(this.pipeline(n.pipe, dot, 'action'), 'action');
          break;
        case 'if': {
          const taken = n.branches.find((b) => truthy(this.pipeline(b.cond, dot, 'if')));
          out += this.nodes(taken ? taken.body : n.otherwise, dot);
          break;
        }
        case 'with': {
          const v = this.pipeline(n.pipe, dot, 'with');
          out += truthy(v) ? this.nodes(n.body, v) : this.nodes(n.otherwise, dot);
          break;
        }
      }
    }
    return out;
  }
}

function isObject(v: Value): v is Record<string, Value> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Helm's merge of values: maps merge key by key, anything else (lists included) replaces; null removes a key. */
export function mergeValues(base: Value, override: Value): Value {
  if (!isObject(base) || !isObject(override)) return structuredClone(override);
  const out: Record<string, Value> = structuredClone(base);
  for (const [k, v] of Object.entries(override)) {
    if (v === null) delete out[k];
    else out[k] = k in out ? mergeValues(out[k], v) : structuredClone(v);
  }
  return out;
}

export interface RenderedChart {
  /** Rendered text of each template file (helpers excluded), by file name. */
  files: Map<string, string>;
  /** Every YAML document of every file, parsed; empty documents dropped. */
  documents: Array<Record<string, unknown> & { apiVersion: string; kind: string }>;
  values: Record<string, unknown>;
}

/** Renders chart directory `chartDir` as `helm template <release> <chartDir> -f <values>` would. */
export function renderChart(
  chartDir: string,
  options: { release?: string; namespace?: string; values?: Record<string, unknown> } = {},
): RenderedChart {
  const chart = YAML.parse(readFileSync(path.join(chartDir, 'Chart.yaml'), 'utf8')) as Record<string, unknown>;
  const defaults = YAML.parse(readFileSync(path.join(chartDir, 'values.yaml'), 'utf8')) as Record<string, unknown>;
  const values = mergeValues(defaults, options.values ?? {}) as Record<string, unknown>;
  const release = options.release ?? 'release-name';
  const root = {
    Values: values,
    Release: {
      Name: release,
      Namespace: options.namespace ?? 'default',
      Service: 'Helm',
      IsInstall: true,
      IsUpgrade: false,
      Revision: 1,
    },
    Chart: { Name: chart.name, Version: chart.version, AppVersion: chart.appVersion },
    Capabilities: { KubeVersion: { Version: 'v1.31.0', Major: '1', Minor: '31' } },
  };
  const dir = path.join(chartDir, 'templates');
  const names = readdirSync(dir).sort();
  const defines = new Map<string, Node[]>();
  const parsed = new Map<string, Node[]>();
  for (const name of names) {
    if (!name.endsWith('.yaml') && !name.endsWith('.tpl'))
      throw new Error(`templates/${name}: only .yaml and .tpl files are rendered here`);
    parsed.set(name, parse(lex(readFileSync(path.join(dir, name), 'utf8'), `templates/${name}`), defines));
  }
  const renderer = new Renderer(defines, root);
  const files = new Map<string, string>();
  const documents: RenderedChart['documents'] = [];
  for (const [name, nodes] of parsed) {
    if (name.startsWith('_')) continue;
    const text = renderer.nodes(nodes, root);
    files.set(name, text);
    for (const doc of YAML.parseAllDocuments(text)) {
      if (doc.errors.length > 0)
        throw new Error(`templates/${name}: rendered YAML is invalid: ${doc.errors[0]!.message}\n${text}`);
      const value = doc.toJS() as RenderedChart['documents'][number] | null;
      if (value !== null) documents.push(value);
    }
  }
  return { files, documents, values };
}

/** Renders one template text with `data` as dot (and `$`); `defines` holds templates `include` may name. */
export function renderString(template: string, data: unknown, defines = ''): string {
  const table = new Map<string, Node[]>();
  parse(lex(defines, 'defines'), table);
  return new Renderer(table, data).nodes(parse(lex(template, 'template'), table), data);
}
