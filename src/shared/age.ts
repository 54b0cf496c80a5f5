/** Age from a date of birth, one rule for provider decisions and the claims mapping's age() function. */

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Whole years between a `YYYY-MM-DD` birth date and `nowSeconds` (UTC); undefined for anything else. */
export function ageAt(dateOfBirth: unknown, nowSeconds: number): number | undefined {
  if (typeof dateOfBirth !== 'string') return undefined;
  const m = DATE.exec(dateOfBirth);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const birth = new Date(Date.UTC(y, mo - 1, d));
  if (birth.getUTCFullYear() !== y || birth.getUTCMonth() !== mo - 1 || birth.getUTCDate() !== d) return undefined;
  const now = new Date(nowSeconds * 1000);
  let age = now.getUTCFullYear() - y;
  const beforeBirthday = now.getUTCMonth() + 1 < mo || (now.getUTCMonth() + 1 === mo && now.getUTCDate() < d);
  if (beforeBirthday) age--;
  return age >= 0 ? age : undefined;
}
