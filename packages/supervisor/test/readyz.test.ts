/**
 * /healthz answers as soon as the admin listener is up; /readyz answers 503
 * until every worker listens, and again while a replacement worker has not
 * started listening. Workers are held before they listen by a preloaded
 * fixture (fixtures/hold-workers.mjs) until the test opens a gate file.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { compilePlugin, eventually, fixture, request, startFlexilib, tempDir, writeConfig } from '@flexilib/test-support';

const tmp = tempDir('readyz');
let config: string;
before(async () => {
  const lib = await compilePlugin(fixture('metrics_plugin.c'), path.join(tmp.dir, 'libmetrics_plugin.so'));
  config = writeConfig(tmp.dir, `/ = ${lib}\n`);
});
after(() => tmp.cleanup());

test('/readyz is 503 before the workers listen and while a replacement starts, 200 otherwise', async () => {
  const gate = path.join(tmp.dir, 'gate');
  const hold = `--import=${pathToFileURL(fixture('hold-workers.mjs')).href}`;
  const f = await startFlexilib({
    config,
    workers: 2,
    // No spare: the replacement is forked after the death, so the gate can hold it.
    args: ['--spare-workers', '0'],
    ready: 'admin',
    env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${hold}`.trim(), FLEXILIB_TEST_GATE: gate },
  });
  try {
    // Both workers are running (forked) but held before listening.
    await f.waitForLog(() => f.logs.filter((l) => l.event === 'worker-start').length === 2, { what: 'two worker-start events' });
    const health = await request(f.adminPort, '/healthz');
    assert.equal(health.status, 200);
    assert.equal(JSON.parse(health.body).status, 'ok');
    const early = await request(f.adminPort, '/readyz');
    assert.equal(early.status, 503);
    assert.deepEqual(JSON.parse(early.body), { status: 'not ready', ready: false, workers: 2, listening: 0 });
    assert.ok(!f.logs.some((l) => l.msg === 'flexilib listening'));

    writeFileSync(gate, '');
    const ready = await f.waitForLog((l) => l.msg === 'flexilib listening', { what: '"flexilib listening"' });
    const port = ready.port as number;
    const up = await request(f.adminPort, '/readyz');
    assert.equal(up.status, 200);
    assert.deepEqual(JSON.parse(up.body), { status: 'ready', ready: true, workers: 2, listening: 2 });
    assert.equal((await request(port, '/')).status, 200);

    // Close the gate and kill a worker: its replacement is held, so not ready.
    rmSync(gate);
    const victim = f.logs.find((l) => l.event === 'worker-listening')!.workerPid as number;
    process.kill(victim, 'SIGKILL');
    await f.waitForLog((l) => l.event === 'worker-start' && l.restart === true, { what: 'the replacement worker' });
    const down = await request(f.adminPort, '/readyz');
    assert.equal(down.status, 503);
    assert.equal(JSON.parse(down.body).listening, 1);
    // The surviving worker keeps serving meanwhile.
    assert.equal((await request(port, '/')).status, 200);

    writeFileSync(gate, '');
    await eventually('/readyz 200 again', async () => ((await request(f.adminPort, '/readyz')).status === 200 ? true : undefined));
  } finally {
    writeFileSync(gate, '');
    await f.stop();
  }
});
