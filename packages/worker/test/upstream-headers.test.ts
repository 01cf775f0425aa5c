// The proxy's header rewriting, called directly: names in any case, the
// memo of header-name kinds (first call and repeats must agree, and a flood
// of new names must not change an answer), and the facts read on the way.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { requestHeaders, responseHeaders, type RequestFacts } from '../src/upstream/headers.js';

function req(raw: string[], remote = '127.0.0.1'): { out: string[]; facts: RequestFacts } {
  const facts: RequestFacts = { hasBody: false };
  return { out: requestHeaders(raw, remote, 'http', facts), facts };
}

describe('upstream request headers', () => {
  it('drops hop-by-hop names in any case, keeps the rest in order, and reads the body facts', () => {
    const raw = [
      'HOST', 'shop.example',
      'CONNECTION', 'Keep-Alive, X-Drop-Me',
      'x-drop-me', '1',
      'Keep-Alive', 'timeout=5',
      'TE', 'trailers',
      'Proxy-Authorization', 'Basic Zm9v',
      'Expect', '100-continue',
      'Transfer-Encoding', 'chunked',
      'Accept', '*/*',
      'X-Forwarded-For', '203.0.113.9',
      'x-forwarded-proto', 'https',
      'Forwarded', 'for=203.0.113.9;proto=https',
      'Content-Type', 'text/plain',
    ];
    for (let round = 0; round < 3; round++) {
      const { out, facts } = req(raw, '::ffff:10.0.0.7');
      assert.deepEqual(out, [
        'HOST', 'shop.example',
        'Accept', '*/*',
        'Content-Type', 'text/plain',
        'x-forwarded-for', '203.0.113.9, 10.0.0.7',
        'x-forwarded-proto', 'http',
        'x-forwarded-host', 'shop.example',
        // The client's element kept, flexilib's appended last (RFC 7239 §5.2).
        'forwarded', 'for=203.0.113.9;proto=https, for=10.0.0.7;host=shop.example;proto=http',
      ], `round ${round}`);
      assert.equal(facts.hasBody, true);
    }
    assert.equal(req(['Content-Length', '0']).facts.hasBody, false);
    assert.equal(req(['content-length', '5']).facts.hasBody, true);
    assert.deepEqual(req(['content-length', '5']).out.slice(0, 2), ['content-length', '5']);
  });

  it('appends its own Forwarded element: IPv6 bracketed and quoted, a host:port quoted, an unknown peer named so', () => {
    const fwd = (raw: string[], remote?: string) => {
      const out = requestHeaders(raw, remote, 'http', { hasBody: false });
      return out[out.length - 1];
    };
    assert.equal(fwd(['Host', '[::1]:8080', 'forwarded', 'for=evil', 'FORWARDED', 'for="[::2]"'], '2001:db8::1'), 'for=evil, for="[::2]", for="[2001:db8::1]";host="[::1]:8080";proto=http');
    assert.equal(fwd(['Host', 'a"b\\c'], '10.0.0.1'), 'for=10.0.0.1;host="a\\"b\\\\c";proto=http');
    assert.equal(fwd([], undefined), 'for=unknown;proto=http');
  });

  it('answers the same after thousands of distinct names have passed', () => {
    for (let i = 0; i < 3000; i++) req([`X-Name-${i}`, 'v', `Connection-${i}`, 'v']);
    const { out } = req(['Connection', 'close', 'Upgrade', 'h2c', 'X-Name-1', 'v']);
    assert.deepEqual(out.slice(0, 2), ['X-Name-1', 'v']);
  });
});

describe('upstream response headers', () => {
  it('drops hop-by-hop names and the ones Connection lists, keeps the rest as received', () => {
    const raw = (pairs: string[]) => pairs.map((s) => Buffer.from(s, 'latin1'));
    const sent = raw([
      'Content-Type', 'text/plain',
      'Connection', 'X-Secret, keep-alive',
      'X-Secret', 's',
      'Keep-Alive', 'timeout=10',
      'Proxy-Authenticate', 'Basic',
      'Transfer-Encoding', 'chunked',
      'X-Forwarded-For', 'kept',
      'Set-Cookie', 'a=\u00e9',
    ]);
    for (let round = 0; round < 3; round++) {
      assert.deepEqual(responseHeaders(sent), ['Content-Type', 'text/plain', 'X-Forwarded-For', 'kept', 'Set-Cookie', 'a=\u00e9']);
    }
    assert.deepEqual(responseHeaders(raw(['CONNECTION', 'close', 'Content-Length', '2'])), ['Content-Length', '2']);
  });
});
