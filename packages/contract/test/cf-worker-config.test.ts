/**
 * `/w = worker:NAME` routes and `[worker.NAME]` sections: the example
 * parses to what the executor gets, defaults apply, and every bad key or value
 * is reported with its file and line while the rest still parses.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { DEFAULT_CF_WORKER } from '../src/cf-workers/worker-config.js';

function problems(text: string): string[] {
  try {
    parseConfig(text, '/srv/proxy.ini');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message.split('\n');
  }
  assert.fail('expected a ConfigError');
}

test("the issue's example", () => {
  const c = parseConfig(
    `/w = worker:shop

[worker.shop]
module = workers/shop.mjs   ; export default { fetch(request, env, ctx) }
vars.GREETING = hi          ; env bindings
kv.CACHE = shop-cache       ; a KV namespace
cpu_ms = 50
memory = 128m
instances = 4
idle = 60s
`,
    '/srv/proxy.ini',
  );
  assert.deepEqual(c.routes[0].target, { kind: 'worker', worker: 'shop', configured: 'worker:shop' });
  assert.deepEqual(c.workers, [
    {
      name: 'shop',
      line: 3,
      module: '/srv/workers/shop.mjs',
      vars: { GREETING: 'hi' },
      kv: { CACHE: 'shop-cache' },
      cpuMs: 50,
      memoryBytes: 128 * 1024 * 1024,
      instances: 4,
      idleMs: 60_000,
      spare: 0,
      compatibilityDate: DEFAULT_CF_WORKER.compatibilityDate,
      compatibilityFlags: [],
      stateDir: path.join('/srv', '.flexilib', 'workers'),
    },
  ]);
});

test('defaults, compatibility settings and the state folder', () => {
  const c = parseConfig('/ = worker:a\n[worker.a]\nmodule = a.js\ncompatibility_date = 2024-09-23\ncompatibility_flags = nodejs_compat, rpc\nstate = /var/lib/kv\n', '/srv/proxy.ini');
  const w = c.workers[0];
  assert.equal(w.cpuMs, DEFAULT_CF_WORKER.cpuMs);
  assert.equal(w.instances, 4);
  assert.equal(w.compatibilityDate, '2024-09-23');
  assert.deepEqual(w.compatibilityFlags, ['nodejs_compat', 'rpc']);
  assert.equal(w.stateDir, '/var/lib/kv');
});

test('every bad key and value, with file:line', () => {
  assert.deepEqual(
    problems(`/a = worker:shop
/b = worker:
/c = worker:nosuch
[worker.shop]
module = shop.mjs
cpu_ms = 0
memory = 1k
instances = lots
idle = soon
vars.9bad = x
kv.CACHE =
kv.GREETING = ns
vars.GREETING = again
compatibility_date = tomorrow
compatibility_flags = Bad-Flag
colour = blue
[worker.bad name]
[worker.greedy]
module = g.mjs
instances = 2
spare = 3
[worker.empty]
[worker.shop]
`),
    [
      '/srv/proxy.ini:2: route "/b": "worker:" needs a worker name',
      '/srv/proxy.ini:3: route "/c": worker "nosuch" is not defined (add a [worker.nosuch] section)',
      '/srv/proxy.ini:6: [worker.shop] cpu_ms = "0": expected an integer from 1 to 300000',
      '/srv/proxy.ini:7: [worker.shop] memory = "1k": expected a size from 16m to 4g, such as 128m',
      '/srv/proxy.ini:8: [worker.shop] instances = "lots": expected an integer from 1 to 64',
      '/srv/proxy.ini:9: [worker.shop] idle = "soon": expected a duration from 1ms to 24h, such as 500ms or 60s',
      '/srv/proxy.ini:10: [worker.shop] vars.9bad: a binding name is a JavaScript identifier (letters, digits, "_", "$")',
      '/srv/proxy.ini:11: [worker.shop] kv.CACHE = "": expected a namespace id (no spaces, quotes or backslashes)',
      '/srv/proxy.ini:13: [worker.shop] binding "GREETING" is defined twice (first at line 12)',
      '/srv/proxy.ini:14: [worker.shop] compatibility_date = "tomorrow": expected a date such as 2025-06-01',
      '/srv/proxy.ini:15: [worker.shop] compatibility_flags: "Bad-Flag" is not a flag name (lower-case letters, digits and "_")',
      '/srv/proxy.ini:16: [worker.shop] unknown key "colour" (known: module, vars.NAME, kv.NAME, cpu_ms, memory, instances, idle, spare, compatibility_date, compatibility_flags, state)',
      '/srv/proxy.ini:17: [worker.bad name]: a worker name is letters, digits, "_" and "-"',
      '/srv/proxy.ini:18: [worker.greedy] spare = 3 is more than instances = 2',
      '/srv/proxy.ini:22: [worker.empty] has no module: add module = PATH (the Worker\'s entry file)',
      '/srv/proxy.ini:23: [worker.shop] is defined twice (first at line 4)',
    ],
  );
});
