/** Config of the workload-jwt policy. */
export interface WorkloadJwtConfig {
  audience: string[];
  spiffe_id?: string;
  socket?: string;
  header: string;
  timeout_ms: number;
}

export const workloadJwtSchema = {
  type: 'object',
  properties: {
    audience: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', minLength: 1 },
      description: 'Audience(s) the JWT-SVID is requested for: what the upstream checks in `aud`.',
    },
    spiffe_id: {
      type: 'string',
      pattern: '^spiffe://',
      description: "Which of the gateway's identities to request the token for. Default: the agent's default.",
    },
    socket: {
      type: 'string',
      pattern: '^(unix:///|tcp://)',
      description: 'Workload API endpoint: unix:///path or tcp://IP:port. Default: SPIFFE_ENDPOINT_SOCKET.',
    },
    header: {
      type: 'string',
      default: 'authorization',
      pattern: '^[a-z0-9-]+$',
      description:
        "Request header that carries the token upstream (replacing the client's); `authorization` gets `Bearer <token>`, any other header the bare token.",
    },
    timeout_ms: { type: 'integer', minimum: 1, default: 2000, description: 'Deadline of one FetchJWTSVID call.' },
  },
  required: ['audience'],
  additionalProperties: false,
} as const;
