/**
 * proxy.ini's WASM options and the service route matcher, in process:
 * limits parse with their units, bad values and misplaced options are
 * reported with their line, and a service prefix matches whole segments only.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { parseConfig } from '@flexilib/contract';
import { ConfigError } from '@flexilib/contract';
import { serviceRoute } from '../../src/routing/build-router.js';
import type { Executor } from '../../src/executor.js';
import { Router } from '../../src/routing/router.js';
import { DEFAULT_WASM_LIMITS, parseDuration, resolveLimits } from '@flexilib/contract';

test('a .wasm route takes timeout, memory, instances, idle and run', () => {
  const cfg = parseConfig(
    ['/svc = mods/svc.wasm', '/lib = lib.so', '/t = t.wasm', '[route /svc]', 'timeout = 2s', 'memory = 64m', 'instances = 2', 'idle = 500ms', 'run = loop', '[route /t]', 'run = thread', ''].join('\n'),
    '/etc/flexi/proxy.ini',
  );
  const svc = cfg.routes[0];
  assert.deepEqual(svc.target, { kind: 'wasm', module: '/etc/flexi/mods/svc.wasm', configured: 'mods/svc.wasm' });
  assert.deepEqual(svc.options.wasm, { timeoutMs: 2000, memoryBytes: 64 * 1024 * 1024, instances: 2, idleMs: 500, run: 'loop' });
  assert.deepEqual(resolveLimits(svc.options.wasm), { timeoutMs: 2000, memoryBytes: 64 * 1024 * 1024, instances: 2, idleMs: 500, run: 'loop' });
  assert.equal(cfg.routes[1].options.wasm, undefined);
  assert.deepEqual(cfg.routes[2].options.wasm, { run: 'thread' });
  assert.equal(DEFAULT_WASM_LIMITS.run, 'auto', 'the event loop when the module can be made interruptible, else threads');
  assert.deepEqual(resolveLimits(undefined), DEFAULT_WASM_LIMITS);
  assert.ok(DEFAULT_WASM_LIMITS.timeoutMs <= 30_000, 'the default time limit is at most 30 s');
});

test('bad WASM options are reported with file and line', () => {
  const text = [
    '/svc = svc.wasm', // 1
    '/lib = lib.so', // 2
    '[route /svc]', // 3
    'timeout = 0', // 4
    'memory = lots', // 5
    'instances = 100', // 6
    'idle = -1s', // 7
    'timeout = 10 minutes', // 8
    '[route /lib]', // 9
    'memory = 64m', // 10
    '[route /svc]', // 11
    'run = fiber', // 12
    '[route /lib]', // 13
    'run = loop', // 14
    '',
  ].join('\n');
  assert.throws(
    () => parseConfig(text, 'proxy.ini'),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      const byLine = new Map(err.problems.map((p) => [p.line, p.message]));
      assert.match(byLine.get(4)!, /timeout = "0": expected a duration from 1ms to 300s/);
      assert.match(byLine.get(5)!, /memory = "lots": expected a size from 64k to 4g/);
      assert.match(byLine.get(6)!, /instances = "100": expected an integer from 1 to 64/);
      assert.match(byLine.get(7)!, /idle = "-1s": expected a duration/);
      assert.match(byLine.get(8)!, /timeout = "10 minutes"/);
      assert.match(byLine.get(10)!, /memory = "64m": applies to routes to \.wasm modules only, and "\/lib" is a native route/);
      assert.match(byLine.get(12)!, /run = "fiber": expected auto, loop, thread/);
      assert.match(byLine.get(14)!, /run = "loop": applies to routes to \.wasm modules only/);
      assert.match(err.message, /proxy\.ini:4: /);
      return true;
    },
  );
});

test('durations take ms, s, m and h', () => {
  assert.equal(parseDuration('250'), 250);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('2m'), 120_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('soon'), undefined);
});

test('a service prefix matches /svc, /svc/, /svc/* and /svc?q, not /svcx', () => {
  const route = serviceRoute({ name: 'svc', prefix: '/svc', module: '/m.wasm', sha256: 'x', limits: {} });
  const catchAll = { ...route, key: '/', pathPrefix: '/', segmentPrefix: undefined };
  const ex = (r: typeof route): Executor => ({ kind: 'wasm', route: r, handle() {}, close() {} });
  const router = new Router([ex(route), ex(catchAll)]);
  const match = (url: string) => router.match({ url, headers: {} } as IncomingMessage)?.route.key;
  for (const url of ['/svc', '/svc/', '/svc/a/b', '/svc?x=1']) assert.equal(match(url), 'service:svc', url);
  for (const url of ['/svcx', '/sv', '/other', '/svc.old']) assert.equal(match(url), '/', url);
});
