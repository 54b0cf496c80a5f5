/** Config of the client-certificate policy: the mtls authenticator's settings plus what the route demands. */
import { mtlsProperties, type MtlsConfig } from '../authenticate/mtls/schema.js';

export interface ClientCertificateConfig extends MtlsConfig {
  required: boolean;
  identity_headers: boolean;
}

export const clientCertificateSchema = {
  type: 'object',
  properties: {
    ...mtlsProperties,
    required: {
      type: 'boolean',
      default: true,
      description:
        'Answer 401 when the connection carries no valid client certificate. When false, requests without ' +
        'one pass unauthenticated (an invalid one is still refused).',
    },
    identity_headers: {
      type: 'boolean',
      default: true,
      description:
        'Send the verified identity upstream as x-kycgate-client-spiffe-id, x-kycgate-client-consumer and ' +
        'x-kycgate-client-cert-sha256 (any such header from the client is removed first).',
    },
  },
  additionalProperties: false,
} as const;
