// normalizeTarget (src/target.ts), called directly: RFC 3986 §5.2.4 dot-segment
// removal with %2e read as a dot and %2F, %5C and \ as separators, the query
// untouched, and the target itself (no copy) when there is nothing to remove.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizeTarget } from '../src/routing/target.js';

describe('normalizeTarget', () => {
  it('removes dot segments, written as dots or %2e in any case', () => {
    const cases: Array<[string, string]> = [
      ['/api/../admin', '/admin'],
      ['/api/%2e%2e/admin', '/admin'],
      ['/api/%2E%2e/admin', '/admin'],
      ['/api/.%2E/admin', '/admin'],
      ['/a/./b/../../c', '/c'],
      ['/a/b/..', '/a/'],
      ['/a/.', '/a/'],
      ['/a/%2e', '/a/'],
      ['/..', '/'],
      ['/../../x', '/x'],
      ['/a//../b', '/a/b'],
      ['/api/..?q=/../x', '/?q=/../x'],
      ['/api/%2e%2e/admin?x=%2e%2e', '/admin?x=%2e%2e'],
      // Encoded slashes and backslashes separate segments when there are dots to remove.
      ['/api%2F..%2Fadmin', '/admin'],
      ['/api%2f%2e%2e%2fadmin', '/admin'],
      ['/api\\..\\admin', '/admin'],
      ['/api%5C..%5cadmin', '/admin'],
      ['/a%2Fb/../c', '/a/c'],
    ];
    for (const [raw, want] of cases) assert.equal(normalizeTarget(raw), want, raw);
  });

  it('leaves everything else as sent', () => {
    for (const raw of ['/', '/index.html', '/a/.b/..c/...', '/a/%2', '/a/.%2', '/a/%2e%2e%2e', '/a%2Fb', '/a\\b', '/a%2F.b', '/q?a=/../b', '*', 'http://h/a/../b', '/a//b']) {
      assert.equal(normalizeTarget(raw), raw, raw);
    }
  });
});
