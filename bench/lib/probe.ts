/**
 * The conformance check run before every measurement: send the request wrk
 * sends, byte for byte, on a raw socket and compare the answer with the
 * baseline's. A benchmark of servers answering different bytes would compare
 * nothing, so a difference stops the bench.
 */
import { parseResponse, RawConnection, type RawResponse } from '@flexilib/plugin-abi/conformance';
import type { Conformance } from './scenario.ts';

export type { RawResponse };

/** The number of headers wrk's GET carries (Host), hence the body the C example answers it with (" 1"). */
export const WRK_REQUEST_HEADERS = 1;

/** Send `request` on a fresh connection and read one response (it must carry a content-length). */
export async function fetchRaw(port: number, request: string, timeoutMs = 5000): Promise<RawResponse> {
  const c = new RawConnection(port);
  try {
    c.write(request);
    const [raw] = await c.responses(1, [], timeoutMs).catch((err: Error) => {
      throw new Error(`no complete answer from 127.0.0.1:${port}: ${err.message}`);
    });
    const r = parseResponse(raw);
    if (!r.headers.has('content-length')) throw new Error(`answer without content-length: ${JSON.stringify(raw.subarray(0, raw.indexOf('\r\n\r\n')).toString('latin1'))}`);
    return r;
  } finally {
    c.close();
  }
}

/** The raw answer with the Date header's value masked: the one part that legitimately differs. */
export function normalize(raw: Buffer): string {
  return raw.toString('latin1').replace(/^(date:)[^\r\n]*/gim, '$1 <date>');
}

/**
 * Compare a scenario's answer with the baseline's; returns a description of
 * the first difference, or undefined when they conform.
 */
export function compareAnswers(baseline: RawResponse, other: RawResponse, mode: Conformance): string | undefined {
  if (mode === 'identical') {
    const a = normalize(baseline.raw);
    const b = normalize(other.raw);
    return a === b ? undefined : `the answers differ:\n  baseline: ${JSON.stringify(a)}\n  this:     ${JSON.stringify(b)}`;
  }
  const problems: string[] = [];
  if (other.status !== baseline.status) problems.push(`status ${other.status}, baseline ${baseline.status}`);
  if (!other.body.equals(baseline.body)) problems.push(`body ${JSON.stringify(other.body.toString('latin1'))}, baseline ${JSON.stringify(baseline.body.toString('latin1'))}`);
  for (const h of ['content-type', 'x-custom-foo']) {
    if (other.headers.get(h) !== baseline.headers.get(h)) problems.push(`${h}: ${JSON.stringify(other.headers.get(h))}, baseline ${JSON.stringify(baseline.headers.get(h))}`);
  }
  return problems.length ? `the answers differ: ${problems.join('; ')}` : undefined;
}
