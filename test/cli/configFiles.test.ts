import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultConfigFiles } from '../../cli/configFiles.ts';

test('the packaged binary reads /etc/smarthost/smarthost.yaml first; a checkout only ./smarthost.yaml', () => {
  assert.deepEqual(defaultConfigFiles(true), ['/etc/smarthost/smarthost.yaml', 'smarthost.yaml']);
  assert.deepEqual(defaultConfigFiles(false), ['smarthost.yaml']);
  assert.deepEqual(defaultConfigFiles(), ['smarthost.yaml'], 'tests run from the sources, not as the single executable');
});
