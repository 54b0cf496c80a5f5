/**
 * The request class of the gateway's listeners: Node's IncomingMessage, minus one header object per request.
 *
 * Node builds a request's header object the first time `req.headers` is read, and its HTTP/1.1 server reads
 * `req.headers.expect` for every request before it emits 'request'. The forwarding path never needs that object
 * (it reads `rawHeaders`), so every proxied request paid for building it: a property per header, each name
 * lower-cased and matched against Node's table of known fields. Here, until the gateway's request handler takes
 * the request (`takeRequest`), `headers` answers Node's one question from the raw list: a request without an
 * Expect header gets an empty, frozen object; one with it gets the real object. Once taken, `headers` is Node's
 * own lazily built object, exactly as on a plain IncomingMessage. Use it with GATEWAY_REQUEST_OPTIONS.
 */
import { IncomingMessage } from 'node:http';

const TAKEN = Symbol('kycgate.request-taken');

type Taken = IncomingMessage & { [TAKEN]?: boolean };

/** What Node's server sees of a request without an Expect header before the handler takes it. */
const NOTHING_EXPECTED: IncomingMessage['headers'] = Object.freeze(Object.create(null) as IncomingMessage['headers']);

function hasExpect(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 6 && name.toLowerCase() === 'expect') return true;
  }
  return false;
}

export class GatewayIncomingMessage extends IncomingMessage {
  [TAKEN] = false;
}

const nodeHeaders = Object.getOwnPropertyDescriptor(IncomingMessage.prototype, 'headers');
const nodeGet = nodeHeaders?.get;
const nodeSet = nodeHeaders?.set;
// Only where Node builds the object lazily through an accessor (every supported version); otherwise the class
// is a plain IncomingMessage.
if (nodeGet !== undefined && nodeSet !== undefined) {
  Object.defineProperty(GatewayIncomingMessage.prototype, 'headers', {
    configurable: true,
    enumerable: nodeHeaders!.enumerable ?? false,
    get(this: Taken) {
      if (this[TAKEN] === false && !hasExpect(this.rawHeaders)) return NOTHING_EXPECTED;
      return nodeGet.call(this) as IncomingMessage['headers'];
    },
    set(this: Taken, value: IncomingMessage['headers']) {
      nodeSet.call(this, value);
    },
  });
}

/**
 * Server options for listeners built on this class. Node must not check the Host header itself (it would read it
 * from the empty object and refuse every request): the gateway checks it in the request path, where the answer is
 * problem+json like every other refusal.
 */
export const GATEWAY_REQUEST_OPTIONS = Object.freeze({
  IncomingMessage: GatewayIncomingMessage,
  requireHostHeader: false,
} as const);

/** Called first thing by the listener's request handler: from here on `req.headers` is the full object. */
export function takeRequest(req: IncomingMessage): void {
  (req as Taken)[TAKEN] = true;
}
