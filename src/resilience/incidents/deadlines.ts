/**
 * Reporting deadlines of a major incident per Commission Delegated Regulation (EU) 2025/301 Art. 5: the initial
 * notification within 4 hours of the classification as major and at most 24 hours after the entity became aware
 * of it (its detection); the intermediate report within 72 hours of the initial notification; the final report
 * within one month of the latest intermediate report. Times are UTC instants; a report not submitted by its due
 * time is overdue. (The regulation's relief for reports due on weekends and bank holidays, Art. 5(5), depends on
 * the entity's Member State and is left to the operator.)
 */

export type ReportKind = 'initial' | 'intermediate' | 'final';
export const REPORT_KINDS: readonly ReportKind[] = ['initial', 'intermediate', 'final'];

export interface Deadline {
  report: ReportKind;
  due: string;
  basis: string;
  submitted_at: string | null;
  overdue: boolean;
  /** Submitted after it was due. */
  late: boolean;
}

const HOUR = 3_600_000;

/** The same time one calendar month later (UTC), on the month's last day when it has no such day. */
export function addMonth(ms: number): number {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + 1;
  const last = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  return Date.UTC(
    y,
    m,
    Math.min(d.getUTCDate(), last),
    d.getUTCHours(),
    d.getUTCMinutes(),
    d.getUTCSeconds(),
    d.getUTCMilliseconds(),
  );
}

export function reportDeadlines(
  incident: { detectedAt: number; classifiedAt: number | undefined; submissions: Record<string, number> },
  now: number,
): Deadline[] {
  const classified = incident.classifiedAt ?? incident.detectedAt;
  const byClassification = classified + 4 * HOUR;
  const byDetection = incident.detectedAt + 24 * HOUR;
  const initialDue = Math.min(byClassification, byDetection);
  const sub = incident.submissions;
  const intermediateFrom = sub.initial ?? initialDue;
  const intermediateDue = intermediateFrom + 72 * HOUR;
  const finalFrom = sub.intermediate ?? intermediateDue;
  const finalDue = addMonth(finalFrom);
  const one = (report: ReportKind, due: number, basis: string): Deadline => {
    const submitted = sub[report];
    return {
      report,
      due: new Date(due).toISOString(),
      basis,
      submitted_at: submitted === undefined ? null : new Date(submitted).toISOString(),
      overdue: submitted === undefined && now > due,
      late: submitted !== undefined && submitted > due,
    };
  };
  return [
    one(
      'initial',
      initialDue,
      byClassification <= byDetection
        ? '4 h after the classification as major'
        : '24 h after detection (earlier than 4 h after the classification)',
    ),
    one(
      'intermediate',
      intermediateDue,
      sub.initial === undefined
        ? '72 h after the initial notification was due (not submitted yet)'
        : '72 h after the initial notification',
    ),
    one(
      'final',
      finalDue,
      sub.intermediate === undefined
        ? 'one month after the intermediate report was due (not submitted yet)'
        : 'one month after the latest intermediate report',
    ),
  ];
}
