/**
 * Benchmark scenarios: what kycgate is configured with and what each request carries. A scenario is data: adding a
 * capability to the benchmark (an authentication method, a KYC-gated route, a rate limit, audit) is one entry here
 * with the policies its route needs and the headers a client would send.
 *
 * The harness builds the rest of the config around it: one HTTP and one HTTPS listener, the upstream group `bench`
 * pointing at the benchmark upstream, and a route `bench` on prefix `/` forwarding to it.
 */

export interface Scenario {
  /** Short name used on the command line (`--scenarios`) and in the results table. */
  name: string;
  /** What the scenario measures, printed with the results. */
  description: string;
  /** Keys merged into the `bench` route (policies, timeouts ...). */
  route?: Record<string, unknown>;
  /** Top-level config keys merged into the gateway config (log, server, defaults, module sections ...). */
  config?: Record<string, unknown>;
  /** Headers every benchmark request carries (credentials, tokens ...). */
  headers?: Record<string, string>;
  /** Included in the default run (the others run when named with `--scenarios`). */
  byDefault: boolean;
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'bare',
    description: 'Bare route with default settings (access log on): routing, framing and path checks, header rules, forwarding.',
    byDefault: true,
  },
  {
    name: 'bare-no-log',
    description: 'Bare route with the access log off: the difference to `bare` is the cost of one log line per request.',
    config: { log: { access: false } },
    byDefault: true,
  },
  {
    name: 'request-headers',
    description: 'Bare route plus the request-headers policy setting one upstream and one response header.',
    route: { policies: [{ 'request-headers': { set: { 'x-bench': 'yes' }, response_set: { 'x-bench-response': 'yes' } } }] },
    byDefault: false,
  },
];

export function scenarioNamed(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
