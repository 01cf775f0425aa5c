/**
 * `flexilib invoke`: the real command in a child process, calling real .so
 * files compiled here from the C example and small purpose-made plugins.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { compilePlugin, exampleSource, invoke as invokeFlexilib, tempDir, type Invoked } from '@flexilib/test-support';

const tmp = tempDir('invoke');
const dir = tmp.dir;
let example: string;

/** Built as these tests always were: -O1 (a deliberate crash stays the crash written), warnings allowed. */
function compile(name: string, sources: string[]): Promise<string> {
  return compilePlugin(sources, path.join(dir, `lib${name}.so`), { flags: ['-O1', '-Wno-error'] });
}

async function plugin(name: string, code: string): Promise<string> {
  const src = path.join(dir, `${name}.c`);
  await writeFile(src, `#include <flexilib.h>\n${code}\n`);
  return compile(name, [src]);
}

type Run = Invoked;
const invoke = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> => invokeFlexilib(args, { env });

before(async () => {
  example = await compile('example', [exampleSource]);
});
after(() => tmp.cleanup());

describe('flexilib invoke prints what the server would answer', () => {
  test('status line, headers in order with the default content-type, body', async () => {
    const r = await invoke([example, '-H', 'x-log-this: hey', '-H', 'Accept: */*']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'HTTP/1.1 200 OK\nX-custom-foo: bar\ncontent-type: text/plain\ncontent-length: 5\n\nhey 2');
  });

  test('--data implies POST and content-length; --path carries the query; -X sets the method', async () => {
    const r = await invoke([example, '--path', '/echo?a=1', '--data', 'hello']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.toString(), /\n\nPOST \/echo\?a=1\nhello$/);
    const put = await invoke([example, '-X', 'PUT', '--path', '/echo', '-d', 'x']);
    assert.match(put.stdout.toString(), /\n\nPUT \/echo\nx$/);
    const count = await invoke([example, '-d', 'x']);
    assert.match(count.stdout.toString(), /\n\n 1$/, 'content-length is the one header the plugin sees');
  });

  test('--data @file sends the file byte-exact, and a response beyond the arena comes back whole', async () => {
    const body = Buffer.alloc(300_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 9)) & 0xff;
    const file = path.join(dir, 'body.bin');
    await writeFile(file, body);
    const r = await invoke([example, '--path', '/echo', '--data', `@${file}`, '--prealloc-kb', '1']);
    assert.equal(r.code, 0, r.stderr);
    const text = r.stdout;
    const sep = text.indexOf('\n\n');
    assert.match(text.subarray(0, sep).toString(), /content-length: 300011/);
    assert.ok(text.subarray(sep + 2).equals(Buffer.concat([Buffer.from('POST /echo\n'), body])));
  });

  test('x-status below 500 exits 0 with that status', async () => {
    const r = await invoke([example, '-H', 'x-status: 404']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.toString(), /^HTTP\/1\.1 404 Not Found\n/);
  });

  test('a plugin-set content-type, status 0 and a reason phrase are kept as the server keeps them', async () => {
    const lib = await plugin('json', `
      int handle_request(const flexi_request *q, flexi_response *r) {
        (void)q;
        flexi_add_header(r, "Content-Type", "application/json");
        flexi_set_reason(r, "Fine", 4);
        return flexi_write_str(r, "{}");
      }`);
    const r = await invoke([lib]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'HTTP/1.1 200 Fine\nContent-Type: application/json\ncontent-length: 2\n\n{}');
  });
});

describe('flexilib invoke fails loudly', () => {
  test('a nonzero return: 500, the body so far, exit 1 with the return code', async () => {
    const r = await invoke([example, '-H', 'x-throw: 1']);
    assert.equal(r.code, 1);
    assert.match(r.stdout.toString(), /^HTTP\/1\.1 500 Internal Server Error\n[\s\S]*\n\n 1$/);
    assert.match(r.stderr, /handle_request returned 1/);
  });

  test('a 5xx status the plugin set: exit 1', async () => {
    const r = await invoke([example, '-H', 'x-status: 503']);
    assert.equal(r.code, 1);
    assert.match(r.stdout.toString(), /^HTTP\/1\.1 503 /);
    assert.match(r.stderr, /status 503/);
  });

  test('a nonzero return with no body answers "Internal Server Error"', async () => {
    const lib = await plugin('fail', 'int handle_request(const flexi_request *q, flexi_response *r) { (void)q; (void)r; return 7; }');
    const r = await invoke([lib]);
    assert.equal(r.code, 1);
    assert.match(r.stdout.toString(), /\n\nInternal Server Error$/);
    assert.match(r.stderr, /handle_request returned 7/);
  });

  test('load errors name the library and the cause: missing file, no handle_request, failing flexi_init', async () => {
    const missing = path.join(dir, 'nope.so');
    let r = await invoke([missing]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr, new RegExp(`FLX_LIB_NOT_FOUND: library not found: ${missing}`));

    const nohandler = await plugin('nohandler', 'int something(void) { return 0; }');
    r = await invoke([nohandler]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /FLX_LIB_NO_HANDLER: .*libnohandler\.so does not export handle_request/);

    const badinit = await plugin('badinit', `
      FLEXI_EXPORT int flexi_init(void) { return 3; }
      int handle_request(const flexi_request *q, flexi_response *r) { (void)q; (void)r; return 0; }`);
    r = await invoke([badinit]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /FLX_LIB_INIT: .*libbadinit\.so: flexi_init returned 3/);
  });

  test('an invalid response (bad status) is reported as the 502 the server would send', async () => {
    const lib = await plugin('badstatus', 'int handle_request(const flexi_request *q, flexi_response *r) { (void)q; flexi_set_status(r, 42); return 0; }');
    const r = await invoke([lib]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /produced an invalid response \(the server answers 502\): status 42 is not a final status \(200-599\)/);
    // 1xx is no answer either: the server refuses it too (a 101 would open a tunnel through a front proxy).
    const informational = await plugin('status101', 'int handle_request(const flexi_request *q, flexi_response *r) { (void)q; flexi_set_status(r, 101); return 0; }');
    const r101 = await invoke([informational]);
    assert.equal(r101.code, 1);
    assert.match(r101.stderr, /produced an invalid response \(the server answers 502\): status 101 is not a final status \(200-599\)/);
  });

  test('bad flags exit 2 with a message naming the flag', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /expected one library path, got none/],
      [[example, example], /expected one library path/],
      [[example, '-H', 'no colon'], /--header "no colon" is not "Name: value"/],
      [[example, '--method', 'GE T'], /--method "GE T" is not an HTTP method token/],
      [[example, '--path', 'nope'], /--path "nope" must start with "\/"/],
      [[example, '--prealloc-kb', '0'], /--prealloc-kb: "0" is not an integer/],
      [[example, '--data', `@${path.join(dir, 'absent')}`], /--data @.*absent: cannot read/],
      [[example, '--frobnicate'], /Unknown option '--frobnicate'/],
    ];
    const runs = await Promise.all(cases.map(([args]) => invoke(args)));
    runs.forEach((r, i) => {
      assert.equal(r.code, 2, `${cases[i][0].join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, cases[i][1]);
    });
    const env = await invoke([example], { RESPONSE_PREALLOCATION_KB: 'lots' });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /RESPONSE_PREALLOCATION_KB: "lots"/);
  });

  test('--help documents the flags and exits 0', async () => {
    const r = await invoke(['--help']);
    assert.equal(r.code, 0);
    for (const flag of ['--method', '--path', '--header', '--data', '--prealloc-kb']) assert.match(r.stdout.toString(), new RegExp(flag));
  });
});
