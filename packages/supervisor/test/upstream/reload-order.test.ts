/**
 * SIGHUP that moves a route from one pool to another and drops the old pool:
 * no request fails meanwhile. Workers learn the new pools before the new config
 * (its routes name them) and lose the dropped pool only once every worker runs
 * the new config (until then its old routes still name it). A large config
 * (2,000 more routes) makes each worker's switch take a while, so requests do
 * arrive between the two messages.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { compilePlugin, fixture, load, startFlexilib, tempDir, waitForAnswers } from '@flexilib/test-support';
import { startOrigin } from './origins.js';

const PAD = Array.from({ length: 2000 }, (_, i) => `/pad${i} = libv.so`).join('\n');
const configFor = (pool: string, url: string) => `/a = upstream:${pool}\n${PAD}\n\n[upstream.${pool}]\nservers = ${url}\n`;

test('SIGHUP moving a route to a new pool and dropping the old one: no 503 meanwhile', { timeout: 90_000 }, async (t) => {
  const { dir, cleanup } = tempDir('reload-order');
  t.after(cleanup);
  await compilePlugin(fixture('versioned.c'), path.join(dir, 'libv.so'), { defines: ['PAD=16'] });
  const one = await startOrigin(t, 'one');
  const two = await startOrigin(t, 'two');
  const config = path.join(dir, 'proxy.ini');
  writeFileSync(config, configFor('one', one.url));
  const f = await startFlexilib({ config, workers: 2, accessLog: false });
  t.after(() => f.kill());
  await waitForAnswers(f.port, '/a', (r) => r.body === 'one');

  const traffic = load(f.port, '/a', { concurrency: 8, maxMs: 60_000 });
  t.after(() => traffic.stop());
  for (let i = 1; i <= 6; i++) {
    const [pool, origin] = i % 2 ? ['two', two] : ['one', one];
    writeFileSync(config, configFor(pool, origin.url));
    const from = f.logs.length;
    f.signal('SIGHUP');
    const done = await f.waitForLog((l) => l.msg === 'config reloaded', { from, timeoutMs: 20_000 });
    assert.equal(done.applied, 2);
    await waitForAnswers(f.port, '/a', (r) => r.body === pool, { n: 4 });
  }
  const res = await traffic.stop();
  assert.equal(res.failed, 0, `failed: ${res.failed} (${[...res.statuses].map(([s, n]) => `${n} x ${s}`).join(', ')}): ${res.errors.slice(0, 5).join('; ')}`);
  assert.ok((res.bodies.get('one') ?? 0) > 0 && (res.bodies.get('two') ?? 0) > 0, `both pools answered: ${[...res.bodies]}`);
});
