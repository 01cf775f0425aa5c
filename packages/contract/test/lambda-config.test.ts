/**
 * `[lambda.NAME]` sections and `lambda:NAME` routes in proxy.ini: defaults,
 * every key, and each bad value, unknown key, missing bootstrap/code or
 * undefined function reported with its line.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { isToWorker } from '../src/message-check.js';

function problems(text: string): Array<[number, string]> {
  try {
    parseConfig(text, '/srv/proxy.ini');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /^\/srv\/proxy\.ini:\d+: /);
    return err.problems.map((p) => [p.line, p.message]);
  }
  assert.fail('expected a ConfigError');
}

test('the issue\'s example parses: every key, paths relative to the config, defaults', () => {
  const c = parseConfig(
    `/fn = lambda:hello
/api = lambda:api

[lambda.hello]
bootstrap = fns/hello/bootstrap   ; a custom runtime
interpreter = bash
handler = function.handler
event = v2
timeout = 3s
memory = 128m
concurrency = 4
idle = 5m
env.GREETING = hi

[lambda.api]
runtime = nodejs
code = fns/api
handler = index.handler
event = v1
memory = 1024
queue = 0
`,
    '/srv/proxy.ini',
  );
  assert.deepEqual(c.routes.map((r) => r.target), [
    { kind: 'lambda', function: 'hello', configured: 'lambda:hello' },
    { kind: 'lambda', function: 'api', configured: 'lambda:api' },
  ]);
  const [hello, api] = c.lambdas!;
  assert.deepEqual(hello, {
    name: 'hello', line: 4, runtime: 'provided', bootstrap: '/srv/fns/hello/bootstrap', interpreter: 'bash', taskRoot: '/srv/fns/hello',
    handler: 'function.handler', event: 'v2', timeoutMs: 3000, memoryMb: 128, concurrency: 4, queue: 100, idleMs: 300_000, env: { GREETING: 'hi' },
  });
  assert.equal(api.runtime, 'nodejs');
  assert.equal(api.taskRoot, path.resolve('/srv/fns/api'));
  assert.equal(api.event, 'v1');
  assert.equal(api.memoryMb, 1024);
  assert.equal(api.queue, 0);
  assert.equal(api.timeoutMs, 3000, "Lambda's default timeout");
  // The config crosses to workers in `config` messages: the boundary check takes it.
  assert.ok(isToWorker({ type: 'config', config: c, generation: 1, quarantined: [], requestId: 1 }));
});

test('every bad key and value is reported with its line', () => {
  const got = problems(`/a = lambda:a
/b = lambda:missing
/c = lambda:
[lambda.a]
bootstrap = a/bootstrap
event = v3
timeout = 901s
memory = 64m
concurrency = 0
queue = many
idle = soon
env.1X = y
env.AWS_REGION = x
colour = blue
interpreter =
[lambda.n]
runtime = nodejs
[lambda.h]
runtime = nodejs
code = x
handler = nodots
[lambda.p]
handler = x.y
[lambda.q]
runtime = python
[lambda.a]
[lambda.bad name]
`);
  assert.deepEqual(got, [
    [2, 'route "/b": lambda function "missing" is not defined (add a [lambda.missing] section)'],
    [3, 'route "/c": "lambda:" needs a function name'],
    [6, 'event = "v3": expected v2, v1, raw'],
    [7, 'timeout = "901s": expected a duration from 1ms to 900s, such as 3s'],
    [8, 'memory = "64m": expected a size from 128m to 10240m (a plain number is MB)'],
    [9, 'concurrency = "0": expected an integer from 1 to 256'],
    [10, 'queue = "many": expected an integer from 0 to 100000'],
    [11, 'idle = "soon": expected a duration such as 30s or 5m'],
    [12, 'env.1X: an environment variable name is a letter then letters, digits and "_"'],
    [13, 'env.AWS_REGION: AWS_REGION is reserved by Lambda and set by flexilib'],
    [14, 'unknown [lambda.a] key "colour" (known: bootstrap, interpreter, runtime, code, handler, event, timeout, memory, concurrency, queue, idle, env.NAME)'],
    [15, 'interpreter = "": expected a program such as bash'],
    [16, '[lambda.n]: runtime = nodejs needs handler = FILE.EXPORT, such as index.handler'],
    [17, '[lambda.n]: runtime = nodejs needs code = FOLDER (the folder holding the handler\'s module)'],
    [21, '[lambda.h]: handler = "nodots": expected FILE.EXPORT, such as index.handler'],
    [22, '[lambda.p]: needs bootstrap = FILE (a custom runtime) or runtime = nodejs with code = FOLDER'],
    [24, '[lambda.q]: needs bootstrap = FILE (a custom runtime) or runtime = nodejs with code = FOLDER'],
    [25, 'runtime = "python": expected nodejs (flexilib\'s Node runtime) or provided (a bootstrap)'],
    [26, '[lambda.a] is defined twice (first at line 4)'],
    [27, '[lambda.bad name]: a function name is 1 to 64 letters, digits, "_" and "-"'],
  ]);
});
