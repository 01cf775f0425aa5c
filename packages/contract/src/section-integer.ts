/** An integer value of a proxy.ini section's key, checked against its range. */

/** `v` as an integer from `min` to `max`, or undefined after reporting the problem at `line`. */
export function sectionInteger(problem: (line: number, message: string) => void, where: string, key: string, v: string, line: number, min: number, max: number): number | undefined {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) {
    problem(line, `${where} ${key} = "${v}": expected an integer from ${min} to ${max}`);
    return undefined;
  }
  return n;
}
