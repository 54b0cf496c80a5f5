/** Config of the static-response policy. */
import { HEADER_NAME_PATTERN, headerValueSchema } from '../../config/http-schema.js';
export interface StaticResponseConfig {
  status: number;
  body: string;
  content_type: string;
  headers: Record<string, string>;
}

export const staticResponseSchema = {
  type: 'object',
  properties: {
    status: { type: 'integer', minimum: 200, maximum: 599, default: 200, description: 'Status code of the answer.' },
    body: { type: 'string', default: '', description: 'Body of the answer, sent as is.' },
    content_type: {
      ...headerValueSchema,
      default: 'text/plain; charset=utf-8',
      description: 'Content-Type of the answer.',
    },
    headers: {
      type: 'object',
      propertyNames: { pattern: HEADER_NAME_PATTERN },
      additionalProperties: headerValueSchema,
      default: {},
      description: 'Extra response headers.',
    },
  },
  additionalProperties: false,
} as const;
