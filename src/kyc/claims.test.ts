import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ageInYears, compileClaims, grantedClaims } from './claims.js';

test('claims mapping: CEL over decision facts and personal fields; a failing expression grants nothing', () => {
  const rules = compileClaims('kyc', {
    kyc_full: 'facts.id_verification == "Approved" && facts.liveness_score >= 0.8',
    aml_clear: 'facts.aml == "Approved"',
    age_over_18: 'age(personal.date_of_birth) >= 18',
    nfc: 'facts.nfc == "Approved"',
  });
  const granted = grantedClaims(rules, {
    facts: { id_verification: 'Approved', liveness_score: 0.93, aml: 'Declined' },
    personal: { dateOfBirth: '1990-06-30' },
  });
  assert.deepEqual(granted, ['kyc_full', 'age_over_18'], 'aml declined; nfc fact missing');
  assert.deepEqual(
    grantedClaims(rules, { facts: { id_verification: 'Approved', liveness_score: 0.5 }, personal: {} }),
    [],
  );
  assert.throws(() => compileClaims('kyc', { x: 'facts.a +' }), /kyc\.workflows\.kyc\.claims\.x/);
  assert.throws(() => compileClaims('kyc', { x: '"yes"' }), /boolean/);
});

test('age in whole years, counted on the birthday', () => {
  assert.equal(ageInYears('2008-05-10', new Date('2026-05-09T12:00:00Z')), 17);
  assert.equal(ageInYears('2008-05-10', new Date('2026-05-10T00:00:00Z')), 18);
  assert.throws(() => ageInYears('10/05/2008', new Date()));
  for (const impossible of ['1990-13-45', '2000-02-30', '2000-02-28xyz', '2999-01-01'])
    assert.throws(() => ageInYears(impossible, new Date('2026-05-10T00:00:00Z')), impossible);
});
