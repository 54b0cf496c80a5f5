/** Didit's validation of a create-session body, as the sandbox applies it (Django REST field errors). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DOCUMENT_TYPES = new Set(['P', 'ID', 'DL', 'RP', 'HIC', 'TC', 'SSC']);
const DATE = /^\d{4}-\d{2}-\d{2}$/;

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isHttpUrl(v: string): boolean {
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

export function validDate(v: string): boolean {
  if (!DATE.test(v)) return false;
  const d = new Date(v + 'T00:00:00Z');
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === v;
}

/** Validates a create-session body the way Didit does; returns field errors (Django REST style) or the fields. */
export function validateCreate(
  body: unknown,
): { errors: Record<string, string[]> } | { fields: Record<string, unknown> } {
  if (!isPlainObject(body)) return { errors: { non_field_errors: ['Invalid data. Expected a dictionary.'] } };
  const errors: Record<string, string[]> = {};
  const { workflow_id, vendor_data, callback, callback_method, metadata, language, contact_details, expected_details } =
    body;
  if (workflow_id === undefined || workflow_id === null || workflow_id === '')
    errors.workflow_id = ['This field is required.'];
  else if (typeof workflow_id !== 'string' || !UUID.test(workflow_id)) errors.workflow_id = ['Must be a valid UUID.'];
  if (
    vendor_data !== undefined &&
    vendor_data !== null &&
    (typeof vendor_data !== 'string' || vendor_data.length > 1000)
  )
    errors.vendor_data = ['Not a valid string.'];
  if (callback !== undefined && callback !== null && (typeof callback !== 'string' || !isHttpUrl(callback)))
    errors.callback = ['Enter a valid URL.'];
  if (callback_method !== undefined && !['initiator', 'completer', 'both'].includes(callback_method as string))
    errors.callback_method = [`"${String(callback_method)}" is not a valid choice.`];
  if (metadata !== undefined && metadata !== null && !isPlainObject(metadata))
    errors.metadata = ['Must be a JSON object.'];
  if (language !== undefined && (typeof language !== 'string' || !/^[a-z]{2}(-[a-zA-Z]{2})?$/.test(language)))
    errors.language = ['Not a valid language code.'];
  if (contact_details !== undefined && contact_details !== null && !isPlainObject(contact_details))
    errors.contact_details = ['Must be a JSON object.'];
  if (expected_details !== undefined && expected_details !== null) {
    if (!isPlainObject(expected_details)) errors.expected_details = ['Must be a JSON object.'];
    else {
      const types = expected_details.expected_document_types;
      if (
        types !== undefined &&
        (!Array.isArray(types) || types.some((t) => typeof t !== 'string' || !DOCUMENT_TYPES.has(t)))
      ) {
        errors.expected_details = ['expected_document_types must only contain P, ID, DL, RP, HIC, TC or SSC.'];
      }
    }
  }
  return Object.keys(errors).length > 0 ? { errors } : { fields: body };
}
