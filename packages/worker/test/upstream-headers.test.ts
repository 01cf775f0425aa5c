// The proxy's header rewriting, called directly: names in any case, the
// memo of header-name kinds (first call and repeats must agree, and a flood
// of new names must not change an answer), and the facts read on the way.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { requestHeaders, responseHeaders, type RequestFacts } from '../src/upstream/headers.js';
import { HeadMemo } from '../src/upstream/head-memo.js';

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

describe("a route's memo of request heads", () => {
  it('reuses the last headers while the raw headers and the peer repeat, and rebuilds on any change', () => {
    const memo = new HeadMemo();
    const facts: RequestFacts = { hasBody: false };
    const raw = ['Host', 'shop.example', 'Accept', '*/*', 'Connection', 'keep-alive'];
    const first = memo.headers(raw, '10.0.0.1', facts);
    const head = memo.head('GET', '/a', first, '127.0.0.1:9000', 0);
    assert.equal(head, 'GET /a HTTP/1.1\r\nhost: shop.example\r\nconnection: keep-alive\r\nAccept: */*\r\nx-forwarded-for: 10.0.0.1\r\nx-forwarded-proto: http\r\nx-forwarded-host: shop.example\r\nforwarded: for=10.0.0.1;host=shop.example;proto=http\r\n\r\n');
    // The lane reuses its rawHeaders array: the memo must have copied it.
    const again = memo.headers([...raw], '10.0.0.1', facts);
    assert.equal(again, first);
    assert.equal(memo.head('POST', '/b', again, '127.0.0.1:9001', 3), head.replace('GET /a', 'POST /b').replace(/\r\n\r\n$/, '\r\ncontent-length: 3\r\n\r\n'));
    assert.notEqual(memo.headers(raw, '10.0.0.2', facts), first, 'another peer');
    const changed = memo.headers(['Host', 'shop.example', 'Accept', 'text/html'], '10.0.0.2', facts);
    assert.deepEqual(changed.slice(0, 4), ['Host', 'shop.example', 'Accept', 'text/html']);
    // No Host from the client: each origin's own.
    const bare = memo.headers(['Accept', '*/*', 'Content-Length', '4'], '10.0.0.2', facts);
    assert.equal(facts.hasBody, true);
    assert.match(memo.head('POST', '/', bare, 'a:1', 4), /^POST \/ HTTP\/1\.1\r\nhost: a:1\r\n/);
    assert.match(memo.head('POST', '/', bare, 'b:2', 4), /^POST \/ HTTP\/1\.1\r\nhost: b:2\r\n.*content-length: 4\r\n\r\n$/s);
    assert.equal(memo.headers(['Accept', '*/*', 'Content-Length', '4'], '10.0.0.2', facts), bare);
    assert.equal(facts.hasBody, true, 'the facts come from memory too');
  });
});
