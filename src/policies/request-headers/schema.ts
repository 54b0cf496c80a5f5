/** Config of the request-headers policy. */
export interface RequestHeadersConfig {
  set: Record<string, string>;
  remove: string[];
  response_set: Record<string, string>;
  response_remove: string[];
}

const headerName = '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$';
const headerMap = {
  type: 'object',
  propertyNames: { pattern: headerName },
  additionalProperties: { type: 'string', pattern: '^[^\\r\\n\\u0000]*$' },
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
