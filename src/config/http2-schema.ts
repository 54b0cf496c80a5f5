/** The HTTP/2 keys of the configuration: a listener's `http2`, the limits in `server.http2`, an upstream's `http2`. */

export const listenerHttp2Schema = {
  enum: ['alpn', 'h2c', 'off'],
  default: 'alpn',
  description:
    'HTTP/2 on this listener. `alpn` (default): a TLS listener offers `h2` and `http/1.1` by ALPN and serves each ' +
    'connection in the version it chose; a plain listener serves HTTP/1.1 only. `h2c`: a plain listener speaks ' +
    'HTTP/2 with prior knowledge only (no HTTP/1.1; for gRPC clients and front proxies that send h2c). `off`: ' +
    'HTTP/1.1 only. Every policy works the same over both versions.',
} as const;

export const serverHttp2Schema = {
  type: 'object',
  description:
    'Limits of HTTP/2 connections on every listener that speaks it (docs/HTTP2.md). A stream over a header limit ' +
    'is reset (ENHANCE_YOUR_CALM); a connection over the reset limit gets GOAWAY and is closed.',
  properties: {
    max_concurrent_streams: {
      type: 'integer',
      minimum: 1,
      maximum: 10000,
      default: 100,
      description: 'Streams a client may have open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS).',
    },
    max_header_fields: {
      type: 'integer',
      minimum: 16,
      maximum: 1000,
      default: 128,
      description:
        'Header fields (pseudo-headers included) a request may carry; the header list size is `server.max_header_bytes`.',
    },
    max_resets_per_second: {
      type: 'integer',
      minimum: 1,
      maximum: 100000,
      default: 100,
      description:
        'Streams the client may reset per connection and second (rapid reset, CVE-2023-44487); above it the ' +
        'connection is closed with GOAWAY (ENHANCE_YOUR_CALM; INTERNAL_ERROR when nghttp2 closes a flood read at ' +
        'once first), counted in kycgate_http2_connections_closed_total, recorded as an `http2.connection_closed` ' +
        'event and logged.',
    },
    initial_window_bytes: {
      type: 'integer',
      minimum: 65535,
      maximum: 2147483647,
      default: 262144,
      description: 'Flow-control window of each stream (SETTINGS_INITIAL_WINDOW_SIZE).',
    },
    max_session_memory_mb: {
      type: 'integer',
      minimum: 1,
      maximum: 1024,
      default: 10,
      description:
        'Memory one connection may hold in header compression and queued frames before new streams are refused.',
    },
    idle_timeout_ms: {
      type: 'integer',
      minimum: 1000,
      default: 300000,
      description: 'A connection with no frames for this long is closed.',
    },
  },
  additionalProperties: false,
  default: {},
} as const;

export const upstreamHttp2Schema = {
  type: 'boolean',
  default: false,
  description:
    'Speak HTTP/2 to the targets: `https` targets over TLS (ALPN h2), `http` targets with prior knowledge (h2c). ' +
    'Needed for gRPC upstreams. One connection per target carries every request; trailers are relayed.',
} as const;
