/**
 * The worker's end of the control channel, in a real worker process (forked
 * with its init as the supervisor does): a malformed message is logged, naming
 * what was wrong, and dropped; the worker keeps serving and keeps obeying
 * well-formed messages.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfig } from '@flexilib/contract';
import { compilePlugin, eventually, exampleSource, request, tempDir, writeConfig } from '@flexilib/test-support';
import { forkWorker } from './worker-process.js';
const tmp = tempDir('control-messages');
let lib: string;
before(async () => {
  lib = await compilePlugin(exampleSource, path.join(tmp.dir, 'libexample.so'));
});
after(() => tmp.cleanup());

test('a malformed control message is logged and dropped; the worker keeps serving and obeying', { timeout: 30_000 }, async () => {
  const cfgA = writeConfig(tmp.dir, `/a = ${lib}\n`, 'a.ini');
  const cfgB = writeConfig(tmp.dir, `/b = ${lib}\n`, 'b.ini');
  const { child, port, messages, lines } = await forkWorker(loadConfig(cfgA));
  try {
    assert.equal((await request(port, '/a')).status, 200);

    // A config switch whose config lacks its routes, and a kind nobody defined.
    child.send({ type: 'config', config: { file: cfgB, upstreams: [] }, generation: 1, quarantined: [], requestId: 1 });
    child.send({ type: 'reboot' });
    const dropped = await eventually('two drops logged', () => {
      const found = lines.map((l) => JSON.parse(l) as { msg: string; problem?: string }).filter((l) => l.msg === 'dropped a malformed message from the supervisor');
      return found.length === 2 ? found : undefined;
    });
    assert.deepEqual(dropped.map((l) => l.problem), ['config.config.routes must be an array', 'unknown message type "reboot"']);
    assert.equal(messages.filter((m) => m.type === 'config-applied').length, 0, 'the malformed config was not applied');
    assert.equal((await request(port, '/a')).status, 200, 'still serving the old routes');

    child.send({ type: 'config', config: loadConfig(cfgB), generation: 1, quarantined: [], requestId: 2 });
    await eventually('config-applied', () => messages.find((m) => m.type === 'config-applied'));
    assert.equal((await request(port, '/b')).status, 200);
    assert.equal((await request(port, '/a')).status, 404);
  } finally {
    child.kill('SIGKILL');
  }
});
