/**
 * Property-based fuzzing of the proxy.ini parser (fast-check): whatever the
 * text — lines built from the grammar's own pieces (routes, header routes,
 * sections, options, upstream settings) mixed with junk, control bytes,
 * unicode, CR/LF variants and huge values — parseConfig either returns a valid
 * config (at least one route, each with a "/" prefix) or throws a ConfigError
 * whose every line reads `file:line: reason` with a line of the file. Never
 * another exception, never a stack trace for the operator.
 *
 * Bounded: FUZZ_RUNS runs (default 3000). A failure prints fast-check's seed
 * and path; replay with FUZZ_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ConfigError, parseConfig } from '../../src/index.js';

const FILE = '/srv/flexilib/proxy.ini';
const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);

const junk = fc.string({ unit: 'binary', maxLength: 40 });
const word = fc.oneof(fc.constantFrom('', 'a', 'api', 'x.so', 'lib.wasm', 'upstream:', 'upstream:api', 'upstream:nope', '/', '//', '/a b', '"q"', "'q'", '#c', ';c', '=', '[', ']', ':', '\\', '\t', '\u0000', '\u00e9', '\ud83d\ude00'), junk);
const path = fc.oneof(fc.constantFrom('/', '/api', '/a/b', '/svc/', 'api', '', '/x y', '/%2e%2e/'), word.map((w) => `/${w}`));
const value = fc.oneof(fc.constantFrom('lib.so', 'm.wasm', 'upstream:api', 'upstream:', '', '"a.so"', "'a.so' ; c", 'a.so # c', 'x'.repeat(5000)), word);
const option = fc.tuple(
  fc.constantFrom('mode', 'threads', 'max_body', 'timeout', 'memory', 'instances', 'idle', 'servers', 'balance', 'health_path', 'health_interval', 'fall', 'rise', 'connect_timeout', 'header_timeout', 'idle_timeout', 'max_body', 'keepalive', 'bogus'),
  fc.oneof(fc.constantFrom('inline', 'threaded', '0', '1', '64', '65', '-1', '1.5', '4m', '10s', '500ms', 'round_robin', 'least_conn', 'http://127.0.0.1:9001', 'http://127.0.0.1:0', 'http://a, http://b', '9'.repeat(400), 'NaN', 'Infinity', '1e9'), word),
).map(([k, v]) => `${k} = ${v}`);
const line = fc.oneof(
  fc.tuple(path, value).map(([p, v]) => `${p} = ${v}`),
  fc.tuple(fc.constantFrom('Host', 'X-A', 'bad name', ''), word, path, value).map(([h, hv, p, v]) => `${h}: ${hv} ${p} = ${v}`),
  fc.tuple(fc.constantFrom('route ', 'upstream.', 'route', 'upstream', 'other ', ''), fc.oneof(path, word)).map(([k, n]) => `[${k}${n}]`),
  option,
  fc.constantFrom('', '# comment', '; comment', '   ', '[', ']', '=', ' = x', 'no equals here', '[route /a', '[upstream.api] extra'),
  junk,
);
const eol = fc.constantFrom('\n', '\r\n', '\r', '\n\n');
const text = fc.array(fc.tuple(line, eol), { maxLength: 25 }).map((ls) => ls.map(([l, e]) => l + e).join(''));

test('proxy.ini parser: a valid config or `file:line: reason`, never anything else', () => {
  const seen = { valid: 0, refused: 0 };
  fc.assert(
    fc.property(text, (t) => {
      const lineCount = t.split(/\r?\n/).length;
      let config;
      try {
        config = parseConfig(t, FILE);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw new Error(`not a ConfigError: ${(err as Error).stack}`);
        assert.ok(err.problems.length > 0);
        for (const p of err.problems) {
          assert.ok(Number.isInteger(p.line) && p.line >= 1 && p.line <= lineCount, `line ${p.line} of ${lineCount}`);
          assert.ok(p.message.length > 0 && !p.message.includes('\n'), `one line: ${JSON.stringify(p.message)}`);
          assert.doesNotMatch(p.message, /\n\s+at /, 'no stack trace');
        }
        for (const l of err.message.split('\n')) assert.ok(l.startsWith(`${FILE}:`) && /^[^:]+:\d+: ./s.test(l), `file:line: reason — ${JSON.stringify(l.slice(0, 200))}`);
        seen.refused++;
        return;
      }
      assert.ok(config.routes.length > 0, 'a valid config has routes');
      for (const r of config.routes) assert.ok(r.pathPrefix.startsWith('/'), r.key);
      seen.valid++;
    }),
    { numRuns: RUNS, seed: SEED, verbose: 1, includeErrorInReport: true },
  );
  // Both outcomes were exercised (counted over every run, shrinking included).
  assert.ok(seen.valid > 0 && seen.refused > 0, JSON.stringify(seen));
});
