/**
 * Durations as proxy.ini and the APIs write them: `250ms`, `1.5s`, `2m`,
 * `1h`, or a bare number. What a bare number means is the section's: the
 * upstream sections follow nginx (seconds, as in `proxy_read_timeout 30`),
 * the WASM, Lambda and Worker sections count milliseconds. One parser, so
 * the units and the syntax cannot drift apart between sections.
 */
export type BareUnit = 'ms' | 's';

const MULTIPLIER: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds, or undefined when `text` is not a duration. */
export function parseDuration(text: string, bare: BareUnit = 'ms'): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * MULTIPLIER[(m[2] ?? bare).toLowerCase()]!);
}
