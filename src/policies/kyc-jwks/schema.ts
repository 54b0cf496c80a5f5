/** The kyc-jwks policy has no settings: it serves the kyc subsystem's JWKS route. */
export type KycJwksConfig = Record<string, never>;

export const kycJwksSchema = { type: 'object', properties: {}, additionalProperties: false } as const;
