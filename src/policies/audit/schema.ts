/** Config of the audit policy. */
export interface AuditPolicyConfig {
  sync: boolean;
}

export const auditPolicySchema = {
  type: 'object',
  description:
    'Records the final response head of this route in its audit record (upstream headers included, per ' +
    'audit.response_headers), and optionally makes the record durable before the answer leaves.',
  properties: {
    sync: {
      type: 'boolean',
      default: false,
      description:
        "Write and fsync this route's audit record when the response head is ready, before it is sent " +
        '(requires audit.durability: sync). The record then carries the status and latency at that moment. ' +
        'When it cannot be written, a 2xx is withheld and answered 503 service-unavailable with Retry-After.',
    },
  },
  additionalProperties: false,
} as const;
