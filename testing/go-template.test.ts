import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeValues, renderString } from './go-template.js';

// Expected outputs are those of Go's text/template with Helm's functions for the same input.
test('go-template: trimming, conditions, with, pipelines and functions follow Go text/template and Helm', () => {
  const data = {
    Values: { name: 'gw', on: true, off: false, zero: 0, empty: '', list: [], map: { b: 1, a: [1, 2] }, mode: 'csi' },
  };
  assert.equal(renderString('a  {{- " b " -}}  c', data), 'a b c');
  assert.equal(renderString('x\n  {{- if .Values.on }}\n  yes\n  {{- end }}\n', data), 'x\n  yes\n');
  assert.equal(
    renderString('{{ if .Values.off }}1{{ else if eq .Values.mode "csi" }}2{{ else }}3{{ end }}', data),
    '2',
  );
  for (const falsy of ['off', 'zero', 'empty', 'list', 'missing'])
    assert.equal(renderString(`{{ if .Values.${falsy} }}t{{ else }}f{{ end }}`, data), 'f', falsy);
  assert.equal(
    renderString('{{ with .Values.map }}{{ .b }}{{ end }}|{{ with .Values.list }}x{{ else }}none{{ end }}', data),
    '1|none',
  );
  assert.equal(
    renderString('{{ with .Values.map }}{{ $.Values.name }}{{ end }}', data),
    'gw',
    '$ is the root inside with',
  );
  assert.equal(
    renderString('{{ .Values.name | printf "%s-%s" "release" | trunc 9 | trimSuffix "-" }}', data),
    'release-g',
  );
  assert.equal(
    renderString('{{ and 1 0 }} {{ or 0 "" "z" }} {{ not .Values.on }} {{ ne 1 2 }}', data),
    '0 z false true',
  );
  assert.equal(
    renderString('{{ .Values.missing | default "d" }} {{ default "d" .Values.name }} {{ .Values.name | quote }}', data),
    'd gw "gw"',
  );
  assert.equal(
    renderString('{{ (printf "%s" .Values.name) | quote }} {{ contains "w" .Values.name }}', data),
    '"gw" true',
  );
  assert.equal(
    renderString('m:{{ toYaml .Values.map | nindent 2 }}', data),
    'm:\n  a:\n  - 1\n  - 2\n  b: 1',
    'keys sorted, lists not indented, as Helm',
  );
  assert.equal(renderString('{{ include "n" .Values }}', data, '{{- define "n" -}}<{{ .name }}>{{- end }}'), '<gw>');
  assert.equal(
    renderString('{{ "x" | sha256sum }}', data),
    '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881',
  );
});

test('go-template: what it does not implement, and missing values, are errors, never silently rendered', () => {
  const data = { Values: { list: [1] } };
  assert.throws(() => renderString('{{ range .Values.list }}x{{ end }}', data), /range.*not implemented/);
  assert.throws(() => renderString('{{ $x := 1 }}', data), /variables/);
  assert.throws(() => renderString('{{ upper "x" }}', data), /function "upper" is not implemented/);
  assert.throws(() => renderString('{{ .Values.missing }}', data), /missing value/);
  assert.throws(() => renderString('{{ .Values.missing.deeper }}', data), /nil pointer evaluating \.deeper/);
  assert.throws(() => renderString('{{ .Values.list }}', data), /printing a list/);
  assert.throws(() => renderString('{{ if .Values.list }}x', data), /missing \{\{end\}\}/);
  assert.throws(
    () => renderString('{{ required "image.tag is required" .Values.tag }}', data),
    /image\.tag is required/,
  );
});

test('go-template: values merge as Helm merges a values file over the defaults', () => {
  const merged = mergeValues({ a: { b: 1, c: [1, 2] }, d: 1, e: { f: 1 } }, { a: { c: [3] }, d: null, e: { g: 2 } });
  assert.deepEqual(merged, { a: { b: 1, c: [3] }, e: { f: 1, g: 2 } });
});
