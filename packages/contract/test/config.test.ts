import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig, parseSize } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

const FILE = '/etc/flexilib/proxy.ini';

function problems(text: string): string[] {
  try {
    parseConfig(text, FILE);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.code, 'FLX_CONFIG_INVALID');
    return err.problems.map((p) => `${p.line}: ${p.message}`);
  }
  assert.fail('expected a ConfigError');
}

describe('proxy.ini parser', () => {
  it("parses FlexiLib's own example config unchanged, in order", () => {
    const flexilib = [
      '# This is a simple "path prefix" = dynamic library path mapping',
      '# no reordering will be done, so you must do things like:',
      '#    /path/to/longer/path = ...',
      '#    /path = ...',
      '#',
      '# if you want /path/to/longer/path to be used.',
      '#/c = zig-out/lib/libfaas-proxy-sample-lib-in-c.so',
      'Host: iam / = zig-out/lib/libfaas-proxy-sample-lib2.so',
      '/ = zig-out/lib/libfaas-proxy-sample-lib.so',
      '',
    ].join('\n');
    const cfg = parseConfig(flexilib, FILE);
    assert.equal(cfg.routes.length, 2);
    const [host, root] = cfg.routes;
    assert.equal(host.key, 'Host: iam /');
    assert.deepEqual(host.header, { name: 'host', valuePrefix: 'iam' });
    assert.equal(host.pathPrefix, '/');
    assert.equal(host.line, 8);
    assert.deepEqual(host.target, { kind: 'native', library: '/etc/flexilib/zig-out/lib/libfaas-proxy-sample-lib2.so', configured: 'zig-out/lib/libfaas-proxy-sample-lib2.so' });
    assert.equal(root.pathPrefix, '/');
    assert.equal(root.header, undefined);
    assert.equal(root.options.mode, 'inline');
  });

  it('resolves relative library paths against the config folder and keeps absolute ones', () => {
    const cfg = parseConfig('/a = ../lib/a.so\n/b = /opt/b.so\n', '/srv/conf/proxy.ini');
    assert.equal(cfg.routes[0].target.kind === 'native' && cfg.routes[0].target.library, path.resolve('/srv/lib/a.so'));
    assert.equal(cfg.routes[1].target.kind === 'native' && cfg.routes[1].target.library, '/opt/b.so');
  });

  it('compares header names case-insensitively (stored lower-case) and accepts ; comments and quoted values', () => {
    const cfg = parseConfig('; comment\nX-Tenant: acme /api = "lib one.so"\n/b = b.so ; trailing comment\n', FILE);
    assert.deepEqual(cfg.routes[0].header, { name: 'x-tenant', valuePrefix: 'acme' });
    assert.equal(cfg.routes[0].pathPrefix, '/api');
    assert.equal(cfg.routes[0].target.configured, 'lib one.so');
    assert.equal(cfg.routes[1].target.configured, 'b.so');
  });

  it('reads per-route options from [route KEY] sections', () => {
    const cfg = parseConfig('/slow = s.so\n/ = a.so\n\n[route /slow]\nmode = threaded\nthreads = 8\nmax_body = 4m\n', FILE);
    assert.deepEqual(cfg.routes[0].options, { mode: 'threaded', threads: 8, maxBodyBytes: 4 * 1024 * 1024 });
    assert.deepEqual(cfg.routes[1].options, { mode: 'inline', threads: 4 });
  });

  it('reads a threaded native route\'s timeout, and refuses one on an inline route or a bad duration, with its line', () => {
    const cfg = parseConfig('/slow = s.so\n\n[route /slow]\ntimeout = 5s\nmode = threaded\n', FILE);
    assert.deepEqual(cfg.routes[0].options, { mode: 'threaded', threads: 4, timeoutMs: 5000 });
    const got = problems('/a = a.so\n/b = b.so\n[route /a]\ntimeout = 2s\n[route /b]\nmode = threaded\ntimeout = soon\n');
    assert.equal(got.length, 2);
    assert.match(got[0], /^4: timeout applies to threaded native routes \(mode = threaded\)/);
    assert.match(got[1], /^7: timeout = "soon": expected a duration/);
  });

  it('classifies upstream and wasm targets for the executors that handle them', () => {
    const cfg = parseConfig('/api = upstream:api\n/w = mod.wasm\n\n[upstream.api]\nservers = http://127.0.0.1:9001\n', FILE);
    assert.deepEqual(cfg.routes[0].target, { kind: 'upstream', pool: 'api', configured: 'upstream:api' });
    assert.equal(cfg.routes[1].target.kind, 'wasm');
  });

  it('reports every malformed line with its line number', () => {
    const got = problems(
      [
        '/ok = a.so', //                        1
        'this line has no equals sign', //      2
        '= nokey.so', //                        3
        '/empty =', //                          4
        'Host: iam = x.so', //                  5 header route without a path prefix
        'relative = x.so', //                   6 path must start with /
        '/ok = b.so', //                        7 duplicate
        '[route /nope]', //                     8 no such route
        'mode = fast', //                       9
        '[weird]', //                           10
        '[route /ok]', //                       11
        'mode = sideways', //                   12
        'threads = 0', //                       13
        'max_body = lots', //                   14
        'colour = blue', //                     15
        '[unterminated', //                     16
      ].join('\n'),
    );
    assert.deepEqual(got.map((g) => Number(g.split(':')[0])), [2, 3, 4, 5, 6, 7, 8, 10, 12, 13, 14, 15, 16]);
    assert.match(got[0], /expected KEY = VALUE/);
    assert.match(got[5], /duplicate route "\/ok" \(first defined at line 1\)/);
    assert.match(got.find((g) => g.startsWith('12:'))!, /mode = "sideways": expected inline or threaded/);
    assert.match(got.find((g) => g.startsWith('15:'))!, /unknown route option "colour"/);
  });

  it('puts file and line in the error message', () => {
    try {
      parseConfig('/a = a.so\nbroken\n', FILE);
      assert.fail('expected an error');
    } catch (err) {
      assert.match((err as Error).message, /^\/etc\/flexilib\/proxy\.ini:2: malformed line "broken"/);
    }
  });

  it('refuses a config without routes', () => {
    assert.deepEqual(problems('# nothing here\n'), ['1: no routes defined']);
  });

  it('parses sizes', () => {
    assert.equal(parseSize('1048576'), 1048576);
    assert.equal(parseSize('512k'), 512 * 1024);
    assert.equal(parseSize('4M'), 4 * 1024 * 1024);
    assert.equal(parseSize('1gb'), 1024 ** 3);
    assert.equal(parseSize('1.5m'), undefined);
    assert.equal(parseSize('lots'), undefined);
  });

  it('abi = picks a native library\'s interface, for every route naming the same file', () => {
    const cfg = parseConfig(['/a = flexi.so', '/b = flexi.so', '/c = own.so', '[route /b]', 'abi = flexilib', '[route /c]', 'abi = v1'].join('\n'), FILE);
    assert.deepEqual(cfg.routes.map((r) => r.options.abi), ['flexilib', 'flexilib', 'v1']);
    assert.equal(parseConfig('/ = x.so\n', FILE).routes[0].options.abi, undefined, 'unset: detected per load');
  });

  it('refuses a bad abi, an abi on a non-native route and two routes forcing different ones on one file', () => {
    const got = problems(
      [
        '/a = x.so', //                1
        '/b = x.so', //                2
        '/w = m.wasm', //              3
        '[route /a]', //               4
        'abi = flexilib', //           5
        '[route /b]', //               6
        'abi = v1', //                 7
        '[route /w]', //               8
        'abi = flexilib', //           9
        '[route /a]', //               10
        'abi = zig', //                11
      ].join('\n'),
    );
    assert.deepEqual(got, [
      '2: route "/b": abi = v1 conflicts with abi = flexilib of route "/a" (line 1), which names the same library x.so',
      '9: abi = "flexilib": applies to routes to native libraries only, and "/w" is a wasm route',
      '11: abi = "zig": expected v1 or flexilib',
    ]);
  });
});
