/**
 * Keeps the shape of Node's `process.nextTick` records alive for the life of the process.
 *
 * Node's streams call `process.nextTick` about a dozen times per proxied request. Each call builds a record with an
 * object literal whose first two keys are computed (`{ [async_id_symbol]: …, [trigger_async_id_symbol]: …,
 * callback, args }`). V8 gives each store in that literal a feedback slot that remembers, weakly, the one map it
 * has seen. The maps a record passes through after the first store are reachable only from live records (a parent
 * map holds its transitions weakly). When they are lost and a record is built on new maps, the store sites see a
 * second map, their feedback turns megamorphic for good, and optimized `nextTick` calls into the V8 runtime
 * (transition search, map migration) for every record.
 *
 * That happens during kycgate's start-up (module loading, schema compilation): without this pin, V8's feedback for
 * nextTick showed three of its four literal stores megamorphic right after `kycgate start` in every run, and CPU
 * profiles under load put 7.5 to 12.6 µs per request in nextTick (about a tenth of a bare route's CPU) against
 * 0.6 to 1.0 µs with it (docs/PERFORMANCE.md, "The nextTick slow path"). Holding one real record keeps its map, and
 * through the maps' back pointers every intermediate map, alive, so the feedback stays monomorphic.
 *
 * The pin must be taken before start-up has done that (a pin taken when the gateway is constructed, after module
 * loading, was measured too late): `kycgate start` takes it in the first module its
 * entry point imports (cli/pin-tick-records.ts). The record comes from an `init` async hook enabled for a single
 * `nextTick` call and disabled again, so no hook stays installed, and it carries Node's own symbols, which a record
 * built by hand could not.
 */
import { createHook } from 'node:async_hooks';

let pinned: object | undefined;

/** Pins the map of Node's tick records (idempotent). Returns the record that holds it. */
export function pinTickRecordShape(): object | undefined {
  if (pinned !== undefined) return pinned;
  let record: object | undefined;
  const hook = createHook({
    init(_id, type, _trigger, resource) {
      if (type === 'TickObject' && record === undefined) record = resource as object;
    },
  });
  hook.enable();
  try {
    // The shape Node's streams use: a callback and arguments (`args` is an array; a call without arguments leaves it
    // undefined, which is the same field on the same map).
    process.nextTick(noop, undefined);
  } finally {
    hook.disable();
  }
  pinned = record;
  return pinned;
}

function noop(): void {}
