/** Admin API operations on ICT-related incidents (docs/DORA.md): list, show, classify, report. */
import { json, s, type Operation, type Parameter } from './operation-helpers.js';
import { DURATION, ref } from './schema-helpers.js';

const INCIDENT_ID: Parameter = {
  name: 'id',
  schema: s('Incident reference.', { pattern: '^inc_[0-9a-f]{16}$' }),
  description: 'Incident reference (`inc_…`).',
};

export const INCIDENT_OPERATIONS: readonly Operation[] = [
  {
    id: 'listIncidents',
    method: 'GET',
    path: '/incidents',
    role: 'viewer',
    tag: 'incidents',
    summary: 'Incidents open now or detected within the window, newest first (every instance sharing the store).',
    query: [
      {
        name: 'since',
        schema: s('How far back, e.g. `7d`.', { pattern: DURATION, default: '30d' }),
        description: 'Window ending now.',
      },
    ],
    response: json(ref('IncidentList'), 'Incidents.'),
    cli: ['incidents', 'list'],
  },
  {
    id: 'getIncident',
    method: 'GET',
    path: '/incidents/{id}',
    role: 'viewer',
    tag: 'incidents',
    summary: 'An incident: classification from the figures measured now, reporting deadlines, timeline.',
    params: [INCIDENT_ID],
    response: json(ref('IncidentDetail'), 'The incident.'),
    cli: ['incidents', 'show'],
  },
  {
    id: 'classifyIncident',
    method: 'POST',
    path: '/incidents/{id}/classify',
    role: 'operator',
    tag: 'incidents',
    summary: 'Enter what the gateway cannot measure, or override the classification with a justification.',
    params: [INCIDENT_ID],
    body: { schema: ref('IncidentClassify'), required: true },
    response: json(ref('IncidentDetail'), 'Classified.'),
    cli: ['incidents', 'classify'],
    audit: 'admin.incident.classified',
  },
  {
    id: 'incidentReport',
    method: 'POST',
    path: '/incidents/{id}/report',
    role: 'operator',
    tag: 'incidents',
    summary:
      'The initial notification, intermediate or final report (docs/incident-report.schema.json), recording the ' +
      "operator's fields and, with `submitted`, that it was sent to the authority.",
    params: [INCIDENT_ID],
    body: { schema: ref('IncidentReportRequest'), required: true },
    response: json(ref('IncidentReport'), 'The report.'),
    cli: ['incidents', 'report'],
    audit: 'admin.incident.reported',
  },
];
