/**
 * Hot reload of Lambda functions under load: a bash custom runtime's
 * function.sh and a Node function's module are rewritten while 4 keep-alive
 * loops call each route; the new code answers soon after (environments are
 * replaced once their invocation finishes) and no request fails.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { load, startFlexilib, tempDir, until, writeConfig } from '@flexilib/test-support';

const F = path.join(import.meta.dirname, 'fixtures');

test('changed function code replaces environments under load with zero failed requests', { timeout: 90_000 }, async (t) => {
  const tmp = tempDir('lambda-reload');
  t.after(() => tmp.cleanup());
  const bash = path.join(tmp.dir, 'bash-fn');
  const node = path.join(tmp.dir, 'node-fn');
  mkdirSync(bash);
  mkdirSync(node);
  copyFileSync(path.join(F, 'bash-fn/bootstrap'), path.join(bash, 'bootstrap'));
  copyFileSync(path.join(F, 'bash-fn/function.sh'), path.join(bash, 'function.sh'));
  const nodeCode = (v: string) => `export const handler = async () => ({ statusCode: 200, body: ${JSON.stringify(v)} });\n`;
  writeFileSync(path.join(node, 'index.mjs'), nodeCode('node one'));
  const config = writeConfig(
    tmp.dir,
    `/bash = lambda:b\n/node = lambda:n\n\n[lambda.b]\nbootstrap = bash-fn/bootstrap\ninterpreter = bash\nhandler = function.handler\nconcurrency = 4\nenv.GREETING = one\n\n` +
      `[lambda.n]\nruntime = nodejs\ncode = node-fn\nhandler = index.handler\nconcurrency = 4\n`,
  );
  const server = await startFlexilib({ config, workers: 2, accessLog: false });
  t.after(() => server.stop());

  const bashLoad = load(server.port, '/bash/x', { concurrency: 4, maxMs: 60_000 });
  const nodeLoad = load(server.port, '/node', { concurrency: 4, maxMs: 60_000 });
  t.after(() => Promise.all([bashLoad.stop(), nodeLoad.stop()]));
  await until('both routes answer', () => bashLoad.result.ok > 20 && nodeLoad.result.ok > 20, 20_000);

  const sh = path.join(bash, 'function.sh');
  writeFileSync(sh, readFileSync(sh, 'utf8').replace('"%s from bash, pid %s"', '"reloaded %s from bash, pid %s"'));
  writeFileSync(path.join(node, 'index.mjs'), nodeCode('node two'));
  const seen = (r: typeof bashLoad.result, prefix: string) => [...r.bodies.keys()].some((b) => b.startsWith(prefix));
  await until('the new bash code answers', () => seen(bashLoad.result, 'reloaded one from bash'), 20_000);
  await until('the new Node code answers', () => seen(nodeLoad.result, 'node two'), 20_000);
  const okAfter = { b: bashLoad.result.ok, n: nodeLoad.result.ok };
  await until('more requests after the reload', () => bashLoad.result.ok > okAfter.b + 20 && nodeLoad.result.ok > okAfter.n + 20, 20_000);

  const [b, n] = await Promise.all([bashLoad.stop(), nodeLoad.stop()]);
  assert.equal(b.failed, 0, b.errors.join('; '));
  assert.equal(n.failed, 0, n.errors.join('; '));
  assert.ok(seen(b, 'one from bash'), 'the old bash code served before the change');
  assert.ok(n.bodies.has('node one') && n.bodies.has('node two'));
  // Once replaced, only the new code answers.
  const after = await load(server.port, '/node', { concurrency: 2, maxRequests: 20 }).done;
  assert.deepEqual([...after.bodies.keys()], ['node two']);
});
