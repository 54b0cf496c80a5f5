/**
 * Schema patterns for HTTP header names and values set from config. They accept exactly what Node's HTTP layer
 * writes (RFC 9110 tokens for names; tab, visible ASCII and obs-text bytes for values), so a value that would make
 * `res.setHeader` throw on the first matching request is refused when the config is loaded instead.
 */
export const HEADER_NAME_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
export const HEADER_VALUE_PATTERN = '^[\\t\\x20-\\x7e\\x80-\\xff]*$';

export const headerValueSchema = { type: 'string', pattern: HEADER_VALUE_PATTERN } as const;
