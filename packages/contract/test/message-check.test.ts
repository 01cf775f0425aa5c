/**
 * The shape check of every supervisor<->worker message kind: each well-formed
 * message passes (configs from the real parser), and a message with one field
 * missing or of the wrong type is refused with a problem naming that field.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../src/config.js';
import { fromWorkerProblem, isFromWorker, isToWorker, toWorkerProblem } from '../src/message-check.js';
import type { FromWorker, ToWorker } from '../src/protocol.js';

const config = parseConfig(
  ['/a = /opt/lib/liba.so', 'X-Env: beta /b = upstream:api', '/w = /opt/mod.wasm', '[route /w]', 'timeout = 2s', '[upstream.api]', 'servers = http://127.0.0.1:9001', ''].join('\n'),
  '/etc/flexilib/proxy.ini',
);
const notice = { library: '/opt/lib/liba.so', reason: 'crashed workers 3 times', retryAfterS: 60 };
const state = { pools: [{ name: 'api', slot: 0, settings: config.upstreams[0].settings, origins: [{ url: 'http://127.0.0.1:9001', healthy: true, epoch: 0, slot: 1 }] }] };
const service = { name: 'svc', prefix: '/svc', module: '/var/lib/m.wasm', sha256: 'ab'.repeat(32), limits: { timeoutMs: 500 } };

const toWorker: ToWorker[] = [
  { type: 'config', config, generation: 1, quarantined: [notice], requestId: 1 },
  { type: 'reload-library', file: '/opt/lib/liba.so', requestId: 2 },
  { type: 'reload-library', file: '/opt/lib/liba.so', lift: true, requestId: 3 },
  { type: 'quarantine', notice },
  { type: 'listen' },
  { type: 'stop' },
  { type: 'upstream-state', state },
  { type: 'wasm-services', services: [service], generation: 2, requestId: 4 },
];
const fromWorker: FromWorker[] = [
  { type: 'hello' },
  { type: 'standby' },
  { type: 'listening', port: 8069, address: '0.0.0.0' },
  { type: 'config-applied', generation: 1, requestId: 1 },
  { type: 'library-reloaded', file: '/opt/lib/liba.so', ok: false, loaded: false, error: 'dlopen failed', requestId: 2 },
  { type: 'upstream-failure', pool: 'api', origin: 'http://127.0.0.1:9001', epoch: 0, code: 'FLX_UPSTREAM_CONNECT', message: 'refused' },
  { type: 'retire', reason: 'a threaded call ran past its timeout' },
  { type: 'wasm-services-applied', generation: 2, requestId: 4 },
];

/** Through JSON, as node:cluster's IPC carries them. */
const wire = (m: unknown): unknown => JSON.parse(JSON.stringify(m));

test('every well-formed message kind passes, after the trip through JSON', () => {
  for (const m of toWorker) assert.equal(toWorkerProblem(wire(m)), undefined, m.type);
  for (const m of fromWorker) assert.equal(fromWorkerProblem(wire(m)), undefined, m.type);
  assert.ok(toWorker.every(isToWorker) && fromWorker.every(isFromWorker));
  // Each kind of the union is covered above.
  assert.equal(new Set(toWorker.map((m) => m.type)).size, 7);
  assert.equal(new Set(fromWorker.map((m) => m.type)).size, 8);
});

test('a message that is not an object, has no type or an unknown type is refused', () => {
  assert.equal(fromWorkerProblem(null), 'the message is not an object');
  assert.equal(fromWorkerProblem('listening'), 'the message is not an object');
  assert.equal(fromWorkerProblem({ port: 1 }), 'the message has no string "type"');
  assert.equal(fromWorkerProblem({ type: 'config' }), 'unknown message type "config"', 'a supervisor message does not pass as a worker message');
  assert.equal(toWorkerProblem({ type: 'listening', port: 1, address: 'x' }), 'unknown message type "listening"');
  assert.equal(toWorkerProblem({ type: 'toString' }), 'unknown message type "toString"');
});

test('a missing or mistyped field is refused, naming the field', () => {
  const cases: Array<[problem: string | undefined, expected: string]> = [
    [fromWorkerProblem({ type: 'listening', port: '8069', address: '0.0.0.0' }), 'listening.port must be a finite number'],
    [fromWorkerProblem({ type: 'config-applied' }), 'config-applied.generation must be a finite number'],
    [fromWorkerProblem({ type: 'library-reloaded', file: '/x.so', ok: 'yes', loaded: false }), 'library-reloaded.ok must be a boolean'],
    [fromWorkerProblem({ type: 'library-reloaded', file: '/x.so', ok: false, loaded: false, error: 7 }), 'library-reloaded.error must be a string'],
    [fromWorkerProblem({ type: 'upstream-failure', pool: 'api', origin: 'o', epoch: 0, code: 'C' }), 'upstream-failure.message must be a string'],
    [fromWorkerProblem({ type: 'upstream-failure', pool: 'api', origin: 'o', code: 'C', message: 'm' }), 'upstream-failure.epoch must be a finite number'],
    [fromWorkerProblem({ type: 'wasm-services-applied', generation: null }), 'wasm-services-applied.generation must be a finite number'],
    [fromWorkerProblem({ type: 'config-applied', generation: 1 }), 'config-applied.requestId must be a finite number'],
    [fromWorkerProblem({ type: 'library-reloaded', file: '/x.so', ok: true, loaded: true, requestId: '7' }), 'library-reloaded.requestId must be a finite number'],
    [toWorkerProblem({ type: 'config', config: { ...config, routes: [{ ...config.routes[0], target: { kind: 'ftp', configured: 'x' } }] }, generation: 1, quarantined: [] }), 'config.config.routes[0].target.kind must be one of native, upstream, wasm, lambda, worker'],
    [toWorkerProblem({ type: 'config', config, generation: 1 }), 'config.quarantined must be an array'],
    [toWorkerProblem({ type: 'reload-library', file: '/x.so', lift: 1, requestId: 1 }), 'reload-library.lift must be a boolean'],
    [toWorkerProblem({ type: 'reload-library', file: '/x.so' }), 'reload-library.requestId must be a finite number'],
    [toWorkerProblem({ type: 'config', config, generation: 1, quarantined: [] }), 'config.requestId must be a finite number'],
    [toWorkerProblem({ type: 'quarantine', notice: { library: '/x.so', reason: 'r' } }), 'quarantine.notice.retryAfterS must be a finite number'],
    [toWorkerProblem({ type: 'upstream-state', state: { pools: [{ ...state.pools[0], origins: [{ url: 'u', healthy: 'yes', epoch: 0, slot: 1 }] }] } }), 'upstream-state.state.pools[0].origins[0].healthy must be a boolean'],
    [toWorkerProblem({ type: 'wasm-services', services: [{ ...service, limits: { timeoutMs: '1s' } }], generation: 1, requestId: 1 }), 'wasm-services.services[0].limits.timeoutMs must be a finite number'],
    [toWorkerProblem({ type: 'wasm-services', services: [], generation: 1 }), 'wasm-services.requestId must be a finite number'],
  ];
  for (const [problem, expected] of cases) assert.equal(problem, expected);
});
