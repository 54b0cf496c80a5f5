/** The kyc-webhook policy has no settings: it serves the kyc subsystem's webhook route. */
export type KycWebhookConfig = Record<string, never>;

export const kycWebhookSchema = { type: 'object', properties: {}, additionalProperties: false } as const;
