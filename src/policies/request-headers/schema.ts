/** Config of the request-headers policy. */
import { HEADER_NAME_PATTERN, headerValueSchema } from '../../config/http-schema.js';
export interface RequestHeadersConfig {
  set: Record<string, string>;
  remove: string[];
  response_set: Record<string, string>;
  response_remove: string[];
}

const headerName = HEADER_NAME_PATTERN;
const headerMap = {
  type: 'object',
  propertyNames: { pattern: headerName },
  additionalProperties: headerValueSchema,
  default: {},
} as const;
const headerList = { type: 'array', items: { type: 'string', pattern: headerName }, default: [] } as const;

export const requestHeadersSchema = {
  type: 'object',
  properties: {
    set: { ...headerMap, description: 'Headers set on the request sent upstream, replacing any the client sent.' },
    remove: { ...headerList, description: 'Client headers removed before forwarding.' },
    response_set: { ...headerMap, description: 'Headers set on the response sent to the client.' },
    response_remove: { ...headerList, description: 'Headers removed from the response sent to the client.' },
  },
  additionalProperties: false,
} as const;
