/** The fault-injection policy has no settings: faults are armed in `resilience.faults` or with `kycgate faults arm`. */
export const faultInjectionSchema = {
  type: 'object',
  description: 'No settings: the faults are armed in `resilience.faults` or with `kycgate faults arm`.',
  additionalProperties: false,
} as const;
