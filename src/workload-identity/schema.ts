/** Config schema pieces shared by every place that names SPIFFE trust domains and their bundles. */

/** A trust domain name as SPIFFE allows it (lower-case letters, digits, dots, dashes, underscores). */
export const trustDomainNameSchema = { type: 'string', pattern: '^[a-z0-9._-]{1,255}$' } as const;

/** A list of trust domains, each with the bundle file its SVIDs must chain to (or its JWT-SVID keys). */
export function trustDomainsSchema(description: string, names: { name: string; bundle: string }, minItems?: number) {
  return {
    type: 'array',
    ...(minItems !== undefined ? { minItems } : {}),
    description,
    items: {
      type: 'object',
      properties: {
        name: { ...trustDomainNameSchema, description: names.name },
        bundle: { type: 'string', minLength: 1, description: names.bundle },
      },
      required: ['name', 'bundle'],
      additionalProperties: false,
    },
  } as const;
}
