/**
 * Property-based fuzzing of the lean origin client's answer-head parser
 * (src/upstream/answer-head-parser.ts) against llhttp (fast-check): the same
 * generated answer head goes to the parser and to node's own HTTPParser (the
 * llhttp binding node:http and the lean client's fallback use), in strict
 * mode as the client initializes it. Whatever the lean parser accepts,
 * llhttp must accept too and read the same way: status, reason, every header
 * name and value, the connection kept or not, the body's length. (What it
 * declines goes to llhttp in the client; nothing to compare.) The heads are
 * built from the grammar's pieces and its edges: versions, status codes,
 * reasons, line ends, header names and separators, values with control
 * bytes and obs-text, obs-fold, Content-Length, Transfer-Encoding,
 * Connection and Keep-Alive spellings.
 *
 * Bounded: FUZZ_RUNS heads (default 3000; each is parsed in process). A
 * failure prints fast-check's seed and path; replay with FUZZ_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import fc from 'fast-check';
import { AnswerHeadParser } from '../../src/upstream/answer-head-parser.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);

interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(chunk: Buffer): number | Error;
  close(): void;
  [callback: number]: unknown;
}
const { HTTPParser } = createRequire(import.meta.url)('_http_common') as {
  HTTPParser: { new (): Parser; RESPONSE: number; kOnHeaders: number; kOnHeadersComplete: number; kOnBody: number; kOnMessageComplete: number };
};

interface Read {
  status: number;
  reason: string;
  headers: string[];
  keepAlive: boolean;
}

/** llhttp's reading of `head` (a whole answer head), or null when it refuses it. */
function llhttp(head: Buffer, bodiless: boolean): Read | null {
  const p = new HTTPParser();
  p.initialize(HTTPParser.RESPONSE, {}, 0, 0);
  let read: Read | null = null;
  const partial: string[] = [];
  p[HTTPParser.kOnHeaders] = (h: string[]) => partial.push(...h);
  p[HTTPParser.kOnHeadersComplete] = (_maj: number, _min: number, headers: string[] | undefined, _m: unknown, _u: unknown, status: number, reason: string, _upgrade: boolean, keepAlive: boolean) => {
    read = { status, reason, headers: headers ?? partial, keepAlive };
    return bodiless ? 1 : 0;
  };
  p[HTTPParser.kOnBody] = () => {};
  p[HTTPParser.kOnMessageComplete] = () => {};
  const r = p.execute(head);
  p.close();
  return typeof r === 'number' ? read : null;
}

const mostly = <T>(valid: fc.Arbitrary<T>, edge: fc.Arbitrary<T>) => fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: edge, weight: 1 });
const eol = mostly(fc.constant('\r\n'), fc.constantFrom('\n', '\r', '\r\r\n', ' \r\n', '\n\r'));
const version = mostly(fc.constant('HTTP/1.1'), fc.constantFrom('HTTP/1.0', 'HTTP/1.2', 'HTTP/2', 'http/1.1', 'HTTP/1.1 ', 'HTTP/11', 'HTTP/1.01', 'HTTP /1.1', ''));
const status = mostly(fc.constantFrom('200', '201', '204', '301', '304', '404', '500', '599'), fc.constantFrom('100', '101', '103', '099', '000', '600', '999', '20', '2000', ' 200', '2x0', '-20', ''));
const reason = mostly(fc.constantFrom(' OK', ' Not Found', '', ' ', ' caf\xe9', ' Very  Spaced  Out'), fc.constantFrom(' a\tb', ' a\x00b', ' a\x7fb', ' a\rb', '\tOK', 'OK', ' \x01'));
const name = mostly(
  fc.constantFrom('Content-Length', 'content-length', 'Content-Type', 'Date', 'Server', 'X-A', 'Connection', 'Keep-Alive', 'ETag', 'Set-Cookie'),
  fc.oneof(fc.constantFrom('Transfer-Encoding', 'Content-Length ', ' Date', 'X A', 'X\x00A', 'X-\xe9', 'X:A', '', 'Upgrade', 'Proxy-Connection'), fc.string({ unit: 'binary-ascii', maxLength: 8 })),
);
const sep = mostly(fc.constant(': '), fc.constantFrom(':', ' : ', ':\t', ':  ', ': \t'));
const value = mostly(
  fc.constantFrom('text/plain', 'x', '', '0', '5', '12', 'close', 'keep-alive', 'timeout=5', 'timeout=1, max=9', 'caf\xe9', 'v '),
  fc.oneof(
    fc.constantFrom('-1', '+1', '0x1', '1 ', ' 1', '1,1', '5, 5', '00', '99999999999999999999', 'chunked', 'Keep-Alive', 'CLOSE', 'close, x-a', 'upgrade', 'a\tb', 'a\x00b', 'a\x7fb', 'a\r\n b', 'a\n b', 'a\rb'),
    fc.string({ unit: 'binary', maxLength: 10 }).map((x) => Buffer.from(x, 'utf8').toString('latin1')),
  ),
);
const header = fc.tuple(name, sep, value, eol).map(([n, p, v, e]) => `${n}${p}${v}${e}`);
const answerHead = fc
  .tuple(version, status, reason, eol, fc.array(header, { maxLength: 5 }), mostly(fc.constant(true), fc.constant(false)), eol)
  .map(([v, s, r, e1, hs, length, e2]) => `${v} ${s}${r}${e1}${length ? 'Content-Length: 3\r\n' : ''}${hs.join('')}${e2}`);

test('whatever the lean answer parser accepts, llhttp accepts and reads the same way', () => {
  const lean = new AnswerHeadParser();
  let accepted = 0;
  fc.assert(
    fc.property(answerHead, fc.boolean(), (text, headRequest) => {
      const buf = Buffer.from(text, 'latin1');
      const end = buf.indexOf('\r\n\r\n');
      // The client only parses a head it has whole (through its CRLF CRLF), and only that far.
      if (end < 0) return;
      const head = buf.subarray(0, end + 4);
      if (!lean.parse(head, 0, end, headRequest)) return;
      accepted++;
      // Read again, the parser remembers the head (answer after answer, an origin repeats it): the same reading.
      const first = { status: lean.status, reason: lean.reason, headers: lean.headers, keepAlive: lean.keepAlive, length: lean.length };
      assert.ok(lean.parse(Buffer.from(head), 0, end, headRequest), 'accepted again');
      assert.deepEqual({ status: lean.status, reason: lean.reason, headers: lean.headers, keepAlive: lean.keepAlive, length: lean.length }, first);
      // Recognised at the start of a read, body bytes after it; a byte changed anywhere in it is not.
      assert.equal(lean.repeated(Buffer.concat([head, Buffer.from('body')]), headRequest), end);
      const changed = Buffer.from(head);
      changed[(end * 7919) % changed.length] ^= 1;
      assert.equal(lean.repeated(changed, headRequest), -1);
      assert.equal(lean.repeated(head, !headRequest), -1, 'an answer to another kind of request is read again');
      const status = lean.status;
      const bodiless = headRequest || status === 204 || status === 304;
      const ref = llhttp(head, bodiless);
      assert.ok(ref !== null, `llhttp refuses what the lean parser accepted: ${JSON.stringify(text)}`);
      assert.deepEqual(
        { status, reason: lean.reason, headers: lean.headers, keepAlive: lean.keepAlive },
        { status: ref.status, reason: ref.reason, headers: ref.headers, keepAlive: ref.keepAlive },
        JSON.stringify(text),
      );
      // The body's length as llhttp's headers give it (the client requires one unless the answer is bodiless).
      const lengths = ref.headers.filter((_, i) => i % 2 === 0 && ref.headers[i].toLowerCase() === 'content-length').length;
      if (!bodiless) assert.equal(lengths, 1, JSON.stringify(text));
      if (lengths === 1) {
        const i = ref.headers.findIndex((h, k) => k % 2 === 0 && h.toLowerCase() === 'content-length');
        assert.equal(lean.length, Number(ref.headers[i + 1]), JSON.stringify(text));
      }
    }),
    { numRuns: RUNS, seed: SEED },
  );
  // The generator must reach the lean path often, or the property says little.
  assert.ok(accepted > RUNS / 10, `the lean parser accepted ${accepted} of ${RUNS} heads`);
});
