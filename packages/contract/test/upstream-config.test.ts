/**
 * `[upstream.NAME]` sections in proxy.ini: defaults, every key, and each bad
 * value, unknown key or undefined pool reported with its line, beside
 * FlexiLib's flat route lines.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { DEFAULT_UPSTREAM_SETTINGS, parseOrigin } from '../src/upstream/upstream-config.js';
import { parseDuration } from '../src/duration.js';

function problems(text: string): Array<[number, string]> {
  try {
    parseConfig(text, 'proxy.ini');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => [p.line, p.message]);
  }
  assert.fail('expected a ConfigError');
}

test('a full section, flat FlexiLib lines beside it', () => {
  const c = parseConfig(
    `# FlexiLib's flat lines
Host: iam / = lib/example.so
/api = upstream:api
/ = lib/example.so

[upstream.api]
servers = http://127.0.0.1:9001, http://127.0.0.1:9002/ ; trailing slash and comment are fine
balance = least-conn
health_path = /health?deep=1
health_interval = 10s
health_timeout = 1500ms
fall = 5
rise = 1
connect_timeout = 2
header_timeout = 1m
idle_timeout = 0.5s
retries = 1
max_connections = 64
`,
    '/etc/flexi/proxy.ini',
  );
  assert.deepEqual(c.routes.map((r) => [r.key, r.target.kind]), [['Host: iam /', 'native'], ['/api', 'upstream'], ['/', 'native']]);
  assert.deepEqual(c.routes[1].target, { kind: 'upstream', pool: 'api', configured: 'upstream:api' });
  assert.equal(c.upstreams.length, 1);
  const u = c.upstreams[0];
  assert.equal(u.name, 'api');
  assert.equal(u.line, 6);
  assert.deepEqual(u.servers, ['http://127.0.0.1:9001', 'http://127.0.0.1:9002']);
  assert.deepEqual(u.settings, {
    balance: 'least-conn',
    healthPath: '/health?deep=1',
    healthIntervalMs: 10_000,
    healthTimeoutMs: 1500,
    fall: 5,
    rise: 1,
    connectTimeoutMs: 2000,
    headerTimeoutMs: 60_000,
    idleTimeoutMs: 500,
    retries: 1,
    maxConnections: 64,
  });
});

test("Weldr's defaults; an empty `servers =` is a pool filled through the API", () => {
  const c = parseConfig('/api = upstream:api\n[upstream.api]\nservers =\n', 'proxy.ini');
  assert.deepEqual(c.upstreams[0].servers, []);
  assert.deepEqual(c.upstreams[0].settings, DEFAULT_UPSTREAM_SETTINGS);
  assert.equal(DEFAULT_UPSTREAM_SETTINGS.healthPath, '/');
  assert.equal(DEFAULT_UPSTREAM_SETTINGS.healthIntervalMs, 30_000);
  assert.equal(DEFAULT_UPSTREAM_SETTINGS.fall, 3);
  assert.equal(DEFAULT_UPSTREAM_SETTINGS.rise, 2);
  // The check timeout defaults to the interval when that is shorter.
  assert.equal(parseConfig('/a = upstream:a\n[upstream.a]\nhealth_interval = 200ms\n', 'p.ini').upstreams[0].settings.healthTimeoutMs, 200);
});

test('every problem is reported with its line, all at once', () => {
  const got = problems(`/api = upstream:api
/gone = upstream:missing
/x = upstream:

[upstream.api]
servers = http://127.0.0.1:9001, ftp://127.0.0.1:21, http://127.0.0.1:9001, http://u:p@h:1, http://h:1/base
balance = random
health_path = health
health_interval = soon
fall = 0
rise = 1.5
connect_timeout = -1
header_timeout = 2d
idle_timeout = 5ms
retries = 11
max_connections = many
weight = 3

[upstream.api]
[upstream.bad name]
[upstream.]
[route /api]
mode = threaded
`);
  assert.deepEqual(got, [
    [2, 'route "/gone": upstream pool "missing" is not defined (add an [upstream.missing] section)'],
    [3, 'route "/x": "upstream:" needs a pool name'],
    [6, '[upstream.api] servers: "ftp://127.0.0.1:21" is not an http(s) URL: expected http://host:port or https://host:port'],
    [6, '[upstream.api] servers: http://127.0.0.1:9001 is listed twice (first at line 6)'],
    [6, '[upstream.api] servers: "http://u:p@h:1" carries credentials: expected http://host:port'],
    [6, '[upstream.api] servers: "http://h:1/base" has a path, query or fragment: an origin is only scheme://host:port'],
    [7, '[upstream.api] balance = "random": expected round-robin or least-conn'],
    [8, '[upstream.api] health_path = "health": expected a path starting with "/"'],
    [9, '[upstream.api] health_interval = "soon": expected a duration from 50ms to 1h such as 500ms, 5s or 2m'],
    [10, '[upstream.api] fall = "0": expected an integer from 1 to 100'],
    [11, '[upstream.api] rise = "1.5": expected an integer from 1 to 100'],
    [12, '[upstream.api] connect_timeout = "-1": expected a duration from 10ms to 1h such as 500ms, 5s or 2m'],
    [13, '[upstream.api] header_timeout = "2d": expected a duration from 10ms to 1h such as 500ms, 5s or 2m'],
    [14, '[upstream.api] idle_timeout = "5ms": expected a duration from 10ms to 1h such as 500ms, 5s or 2m'],
    [15, '[upstream.api] retries = "11": expected an integer from 0 to 10'],
    [16, '[upstream.api] max_connections = "many": expected an integer from 0 to 100000'],
    [17, '[upstream.api]: unknown key "weight" (known: servers, balance, health_path, health_interval, health_timeout, fall, rise, connect_timeout, header_timeout, idle_timeout, retries, max_connections)'],
    [19, '[upstream.api] is defined twice (first at line 5)'],
    [20, '[upstream.bad name]: a pool name is letters, digits, "_" and "-"'],
    [21, '[upstream.]: a pool name is letters, digits, "_" and "-"'],
  ]);
});

test('origins and durations parse the same way for the config and the API', () => {
  assert.deepEqual(parseOrigin('http://127.0.0.1:9001'), { url: 'http://127.0.0.1:9001', protocol: 'http:', host: '127.0.0.1', port: 9001 });
  assert.deepEqual(parseOrigin('https://Example.COM/'), { url: 'https://example.com:443', protocol: 'https:', host: 'example.com', port: 443 });
  assert.deepEqual(parseOrigin('http://[::1]:8080'), { url: 'http://[::1]:8080', protocol: 'http:', host: '::1', port: 8080 });
  assert.deepEqual(parseOrigin('http://h'), { url: 'http://h:80', protocol: 'http:', host: 'h', port: 80 });
  for (const bad of ['', 'localhost:80', 'ws://h:1', 'http://h:1?x', 'http://h:1#f', 'file:///etc/passwd']) assert.ok('error' in parseOrigin(bad), bad);
  assert.equal(parseDuration('30s', 's'), 30_000);
  assert.equal(parseDuration('30', 's'), 30_000);
  assert.equal(parseDuration('250ms', 's'), 250);
  assert.equal(parseDuration('2m', 's'), 120_000);
  assert.equal(parseDuration('1h', 's'), 3_600_000);
  assert.equal(parseDuration('1.5s', 's'), 1500);
  for (const bad of ['', 's', '-1s', '1d', '1 2s']) assert.equal(parseDuration(bad, 's'), undefined, bad);
});

test('flexilib refuses to start on a bad section, naming file and line', { timeout: 30_000 }, (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flexilib-upcfg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'proxy.ini');
  writeFileSync(file, '/api = upstream:api\n\n[upstream.api]\nservers = http://127.0.0.1:9001\nbalance = fastest\n');
  const bin = path.resolve(import.meta.dirname, '../../supervisor/bin/flexilib');
  const r = spawnSync(process.execPath, [bin, '--config', file, '--port', '0', '--admin-port', '0', '--workers', '1'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5: \\[upstream\\.api\\] balance = "fastest": expected round-robin or least-conn`));
});
