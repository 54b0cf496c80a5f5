import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAutocannon, parseWrk } from './closed-loop.js';
import { median } from './stats.js';

const SAMPLE = `Running 5s test @ http://127.0.0.1:40000/bench
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.28ms    3.01ms  48.12ms   91.20%
    Req/Sec    11.62k     1.02k   12.90k    72.00%
  Latency Distribution
     50%  850.00us
     75%    4.90ms
     90%    6.31ms
     99%    1.02s
  57800 requests in 5.00s, 9.15MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  11560.12
Transfer/sec:      1.83MB
`;

test('bench: wrk output is read with its units, and errors count as failures', () => {
  const r = parseWrk(SAMPLE);
  assert.equal(r.requests, 57800);
  assert.equal(r.requestsPerSecond, 11560.12);
  assert.equal(r.p50Ms, 0.85);
  assert.equal(r.p99Ms, 1020);
  assert.equal(r.failures, 6);
  assert.equal(r.rejected, 3, 'answers of 400 or more');
  assert.equal(r.socketErrors, 3, 'connect, read, write and timeout errors');
});

test('bench: failed requests are not throughput: the successful count and rate leave them out', () => {
  const r = parseWrk(SAMPLE);
  assert.equal(r.succeeded, 57800 - 6);
  assert.ok(Math.abs(r.succeededPerSecond - (11560.12 * 57794) / 57800) < 1e-9);
  assert.ok(r.succeededPerSecond < r.requestsPerSecond);
  const clean = parseWrk(SAMPLE.replace(/^\s+Non-2xx.*\n/m, '').replace(/^\s+Socket errors.*\n/m, ''));
  assert.equal(clean.failures, 0);
  assert.equal(clean.succeeded, 57800);
  assert.equal(clean.succeededPerSecond, 11560.12);
});

test('bench: a median leaves out invalid rounds (NaN) and is NaN only when no round is valid', () => {
  assert.equal(median([3, NaN, 1, 2]), 2);
  assert.equal(median([NaN, 4, 2]), 3);
  assert.ok(Number.isNaN(median([NaN, NaN])));
  assert.ok(Number.isNaN(median([])));
});

test('bench: unreadable wrk output is an error, not a zero', () => {
  assert.throws(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused'), /cannot read wrk output/);
});

// The fields `autocannon -j` prints (autocannon 7/8), trimmed to what the parser reads and a few neighbours.
const AUTOCANNON = {
  latency: {
    average: 4.1,
    mean: 4.1,
    stddev: 2.2,
    min: 1,
    max: 60,
    p0_001: 1,
    p50: 3,
    p90: 6,
    p97_5: 9,
    p99: 14,
    totalCount: 50000,
  },
  requests: { average: 10000, mean: 10000, stddev: 300, min: 9500, max: 10400, total: 50000, sent: 50050 },
  errors: 7,
  timeouts: 4,
  mismatches: 0,
  non2xx: 25,
  resets: 0,
  duration: 5.02,
  '1xx': 0,
  '2xx': 49975,
  '3xx': 20,
  '4xx': 3,
  '5xx': 2,
};

test('bench: autocannon failures are 4xx/5xx answers and errors; redirects are not failures, timeouts not counted twice', () => {
  const r = parseAutocannon(JSON.stringify(AUTOCANNON));
  // non2xx 25 - 3xx 20 + errors 7 (4 of which are the timeouts)
  assert.equal(r.failures, 12);
  assert.equal(r.requests, 50000);
  assert.equal(r.succeeded, 50000 - 12);
  assert.equal(r.p50Ms, 3);
  assert.equal(r.p99Ms, 14);
  const clean = parseAutocannon(
    JSON.stringify({ ...AUTOCANNON, errors: 0, timeouts: 0, non2xx: 20, '4xx': 0, '5xx': 0 }),
  );
  assert.equal(clean.failures, 0);
  assert.equal(clean.succeededPerSecond, 10000);
});
