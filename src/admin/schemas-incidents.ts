/** Schemas of the incident bodies of the admin API. */
import { list, nullable, obj, str, time, type JsonSchema } from './schema-helpers.js';

const text = (d: string) => str(d, { minLength: 1, maxLength: 4000 });

export const INCIDENT_COMPONENTS: Record<string, JsonSchema> = {
  IncidentSummary: obj(
    {
      id: str('Reference.'),
      cause: str('What it is about: `upstream:<group>`, `provider:<name>`, `store` ...'),
      kind: str('Kind of cause.'),
      title: str('Title.'),
      status: { type: 'string', enum: ['open', 'closed'] },
      detected_at: time('First seen.'),
      detected_by: str('Instance that first saw it.'),
      last_seen_at: time('Last seen by any instance.'),
      closed_at: nullable(time('Closed.')),
      classified_at: nullable(time('Classified (or became major).')),
      major: { type: ['boolean', 'null'], description: 'Major per Delegated Regulation (EU) 2024/1772; null before.' },
    },
    [
      'id',
      'cause',
      'kind',
      'title',
      'status',
      'detected_at',
      'detected_by',
      'last_seen_at',
      'closed_at',
      'classified_at',
      'major',
    ],
  ),
  IncidentList: obj({ items: list({ $ref: '#/components/schemas/IncidentSummary' }, 'Incidents.') }, ['items']),
  IncidentDetail: obj(
    {
      incident: { $ref: '#/components/schemas/IncidentSummary' },
      classification: { type: 'object', description: 'Criteria, reasons, figures (docs/DORA.md, "Classification").' },
      deadlines: list({ type: 'object' }, 'Reporting deadlines of a major incident.'),
      operator: { type: 'object', description: "The operator's assessment and fields." },
      timeline: list({ type: 'object' }, 'Events of every instance and operator, oldest first.'),
    },
    ['incident', 'classification', 'deadlines', 'operator', 'timeline'],
  ),
  IncidentClassify: obj(
    {
      major: {
        type: ['boolean', 'null'],
        description: 'Override: major or not (needs `justification`); null clears it.',
      },
      justification: text('Why the override.'),
      reputational_impact: { type: 'boolean', description: 'Art. 9(2).' },
      member_states: list(str('ISO 3166 code.', { pattern: '^[A-Z]{2}$' }), 'Art. 9(4): Member States affected.'),
      economic_impact_eur: { type: 'number', minimum: 0, description: 'Art. 9(6): costs and losses in EUR.' },
      malicious_access: { type: 'boolean', description: 'Art. 8(1)(a): malicious unauthorised access.' },
    },
    [],
  ),
  IncidentReportRequest: obj(
    {
      kind: { type: 'string', enum: ['initial', 'intermediate', 'final'], description: 'Which report.' },
      description: text('What happened.'),
      root_cause: text('Root cause (final report).'),
      actions: text('Actions taken.'),
      bcp_activated: { type: 'boolean', description: 'Business continuity plan activated.' },
      resolved_at: time('Resolved.'),
      lessons: text('Lessons learned.'),
      communication: text('How clients were informed.'),
      submitted: { type: 'boolean', description: 'Record that this report was sent to the authority now.' },
    },
    ['kind'],
  ),
  IncidentReport: {
    type: 'object',
    description: 'The report, valid against docs/incident-report.schema.json.',
    required: ['report', 'incident', 'classification', 'deadlines', 'timeline', 'to_complete'],
  },
};
