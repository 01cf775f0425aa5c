/** The bench starts servers with none of flexilib's variables inherited: only its flags decide. */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { SETTING_ENV_VARS } from '../../packages/supervisor/dist/settings/table.js';
import { SCRUBBED_ENV, serverEnv } from '../lib/servers/flexilib.ts';

const saved = { ...process.env };
after(() => {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
});

test("every variable in flexilib's settings table, and NODE_OPTIONS, is dropped; the scenario's own env is kept", () => {
  assert.ok(SETTING_ENV_VARS.length > 20, 'the settings table lists the variables');
  for (const k of SCRUBBED_ENV) process.env[k] = '1';
  process.env.FLEXILIB_BENCH_KEEP = 'yes';
  const env = serverEnv({ root: '/', tmp: '/tmp', workers: 1, env: { BENCH_SCENARIO: 'x' }, nodeArgs: [] }, { SEND_TIMEOUT_MS: '5' });
  for (const k of [...SETTING_ENV_VARS, 'NODE_OPTIONS']) if (k !== 'SEND_TIMEOUT_MS') assert.equal(env[k], undefined, k);
  assert.equal(env.SEND_TIMEOUT_MS, '5', 'a scenario may still set one on purpose');
  assert.equal(env.FLEXILIB_BENCH_KEEP, 'yes');
  assert.equal(env.BENCH_SCENARIO, 'x');
});
