// The access log's hand-made formatting and the batching line writer: the
// formatters must print exactly what JSON.stringify / toFixed print (the JSON
// line is compared byte for byte with pino's in the supervisor's logs test),
// and the writer must deliver every line whole and in order.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { ms3, msJson } from '../src/access-log.js';

/** Deterministic pseudo-random numbers (xorshift), so a failure repeats. */
function* samples(n: number, scale: number): Generator<number> {
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    yield ((x >>> 0) / 2 ** 32) * scale;
  }
}

describe('access-log number formatting', () => {
  const edges = [0, 0.0004, 0.0005, 0.001, 0.01, 0.1, 0.12, 0.999, 0.9996, 1, 10.5, 14.07, 100.001, 999.9999, 2147483.647, 2147483.648, 5e6, 1e12];

  it('msJson prints what JSON.stringify prints for the value rounded to microseconds', () => {
    for (const ms of [...edges, ...samples(200_000, 50), ...samples(20_000, 5e6)]) {
      assert.equal(msJson(ms), JSON.stringify(Math.round(ms * 1000) / 1000), `ms=${ms}`);
    }
  });

  it('ms3 prints what toFixed(3) prints for the value rounded to microseconds', () => {
    for (const ms of [...edges, ...samples(200_000, 50), ...samples(20_000, 5e6)]) {
      assert.equal(ms3(ms), (Math.round(ms * 1000) / 1000).toFixed(3), `ms=${ms}`);
    }
  });
});

describe('LineWriter', () => {
  it('delivers every line whole and in order through a pipe: short, multibyte, and longer than PIPE_BUF', () => {
    // A child process writes through the real writer to its stdout, a pipe to us.
    const script = `
      import { LineWriter } from ${JSON.stringify(new URL('../src/line-writer.ts', import.meta.url).href)};
      const w = new LineWriter(1);
      for (let i = 0; i < 3000; i++) {
        const len = i % 97 === 0 ? 5000 + i : i % 31 === 0 ? 3000 : 10 + (i % 200);
        const fill = i % 7 === 0 ? 'é€😀'.repeat(Math.ceil(len / 4)) : 'x'.repeat(len);
        w.write(i + ' ' + fill + '\\n');
        if (i % 500 === 0) await new Promise((r) => setImmediate(r));
      }
    `;
    const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(res.status, 0, res.stderr);
    const lines = res.stdout.split('\n');
    assert.equal(lines.pop(), '', 'output ends with a newline');
    assert.equal(lines.length, 3000);
    lines.forEach((line, i) => {
      const len = i % 97 === 0 ? 5000 + i : i % 31 === 0 ? 3000 : 10 + (i % 200);
      const fill = i % 7 === 0 ? 'é€😀'.repeat(Math.ceil(len / 4)) : 'x'.repeat(len);
      assert.equal(line, `${i} ${fill}`, `line ${i}`);
    });
  });
});
