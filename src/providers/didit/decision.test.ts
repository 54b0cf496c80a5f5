import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decisionFromDidit } from './decision.js';
import { ageAt } from '../../shared/age.js';
import { diditStatusToState, DIDIT_STATUSES } from './statuses.js';

const NOW = Date.UTC(2026, 10, 22, 12) / 1000; // 2026-11-22

test('every Didit status maps to its verification state; unknown strings are unverified', () => {
  const expected: Record<string, string> = {
    Approved: 'approved',
    'In Review': 'in_review',
    'Not Started': 'pending',
    'In Progress': 'pending',
    'Awaiting User': 'pending',
    Resubmitted: 'pending',
    Declined: 'declined',
    Expired: 'expired',
    Abandoned: 'expired',
    'Kyc Expired': 'expired',
  };
  for (const s of DIDIT_STATUSES) assert.equal(diditStatusToState(s), expected[s], s);
  assert.equal(diditStatusToState('approved'), 'unverified', 'statuses are case-sensitive');
  assert.equal(diditStatusToState('Something New'), 'unverified');
  assert.equal(diditStatusToState(undefined), 'unverified');
});

test('age in whole years, birthday-exact, Feb 29 and invalid dates', () => {
  assert.equal(ageAt('1990-11-22', NOW), 36);
  assert.equal(ageAt('1990-11-23', NOW), 35);
  assert.equal(ageAt('2008-11-22', NOW), 18);
  assert.equal(ageAt('2008-11-23', NOW), 17);
  assert.equal(ageAt('2008-02-29', Date.UTC(2026, 1, 28) / 1000), 17);
  assert.equal(ageAt('2008-02-29', Date.UTC(2026, 2, 1) / 1000), 18);
  assert.equal(ageAt('1990-02-30', NOW), undefined);
  assert.equal(ageAt('22/11/1990', NOW), undefined);
  assert.equal(ageAt('2030-01-01', NOW), undefined);
});

const decision = {
  session_id: 's-1',
  status: 'Approved',
  workflow_id: 'wf-1',
  vendor_data: 'subject-1',
  session_url: 'https://verify.didit.me/session/abc',
  id_verifications: [
    {
      node_id: 'id_verification_1',
      status: 'Approved',
      document_type: 'Identity Card',
      issuing_state: 'ESP',
      document_number: 'X1234567',
      first_name: 'Elena',
      last_name: 'Sánchez',
      date_of_birth: '1990-05-17',
      expiration_date: '2031-03-01',
      address: 'Calle Mayor 1, Madrid',
      front_image: 'https://media.didit.me/a/front.jpg?sig=x',
      portrait_image: 'https://media.didit.me/a/portrait.jpg?sig=x',
    },
  ],
  liveness_checks: [
    { node_id: 'l1', status: 'Approved', score: 95.4, video_url: 'https://media.didit.me/v.mp4' },
    { node_id: 'l2', status: 'In Review', score: 71 },
  ],
  face_matches: [{ node_id: 'f1', status: 'Approved', score: 96.15, source_image: 'https://media.didit.me/s.jpg' }],
  aml_screenings: [{ node_id: 'a1', status: 'Declined', total_hits: 2, hits: [{ name: 'someone' }] }],
  nfc_verifications: null,
  poa_verifications: [],
  ip_analyses: [{ node_id: 'ip1', status: 'Approved', ip_address: '203.0.113.9' }],
};

test('decision facts: status, worst status per present feature, age, document, country, expiry, scores', () => {
  const d = decisionFromDidit(decision, NOW);
  assert.deepEqual(d.facts, {
    status: 'Approved',
    id_verification: 'Approved',
    liveness: 'In Review',
    face_match: 'Approved',
    aml: 'Declined',
    ip_analysis: 'Approved',
    age: 36,
    document_type: 'Identity Card',
    issuing_country: 'ESP',
    document_expires: '2031-03-01',
    liveness_score: 71,
    face_match_score: 96.15,
  });
  assert.deepEqual(d.personal, { firstName: 'Elena', lastName: 'Sánchez', dateOfBirth: '1990-05-17' });
  assert.equal(d.state, 'approved');
  assert.equal(d.sessionId, 's-1');
  assert.equal(d.workflowId, 'wf-1');
  assert.equal(d.vendorData, 'subject-1');
});

test('a decision keeps nothing but facts and personal: no URL, image, document number, address or raw document', () => {
  const d = decisionFromDidit(decision, NOW);
  const text = JSON.stringify(d);
  assert.doesNotMatch(text, /https?:|media\.didit|X1234567|Calle|203\.0\.113|someone|node_id/);
  assert.deepEqual(Object.keys(d).sort(), [
    'facts',
    'personal',
    'sessionId',
    'state',
    'status',
    'vendorData',
    'workflowId',
  ]);
});

test('a decision without features has only its status; envelope fields fill what the document lacks', () => {
  const d = decisionFromDidit({ status: 'Declined', id_verifications: null }, NOW, {
    sessionId: 's-2',
    workflowId: 'wf',
    vendorData: 'v',
  });
  assert.deepEqual(d.facts, { status: 'Declined' });
  assert.deepEqual(d.personal, {});
  assert.equal(d.state, 'declined');
  assert.equal(d.sessionId, 's-2');
  assert.equal(d.vendorData, 'v');
});

test('v2-style single feature objects are read too', () => {
  const d = decisionFromDidit(
    { status: 'Approved', id_verification: { status: 'Approved', date_of_birth: '2010-01-01' } },
    NOW,
  );
  assert.equal(d.facts.id_verification, 'Approved');
  assert.equal(d.facts.age, 16);
});
