/**
 * A systemd unit file read the way systemd reads it (systemd.syntax(7)):
 * [Section] headers, Key=Value lines, `#`/`;` comments, a trailing backslash
 * continuing a line. A key may repeat; every value is kept in order, and an
 * empty assignment resets the list, as systemd does for list settings.
 */
export type Unit = Map<string, Map<string, string[]>>;

export function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i].trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i].trim()}`;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = unit.get(header[1]) ?? new Map();
      unit.set(header[1], section);
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq < 1) throw new Error(`unit line ${i + 1}: not a [Section] or Key=Value: ${line}`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const values = section.get(key) ?? [];
    if (value === '') values.length = 0;
    else values.push(value);
    section.set(key, values);
  }
  return unit;
}

/** Every value of Section.Key (empty when unset). */
export function values(unit: Unit, section: string, key: string): string[] {
  return unit.get(section)?.get(key) ?? [];
}

/** The value in force for a single-valued setting: the last one. */
export function value(unit: Unit, section: string, key: string): string | undefined {
  return values(unit, section, key).at(-1);
}

/** A systemd time span ("30s", "1min 30s", "90", "500ms") in seconds. */
export function timeSpanSeconds(text: string): number {
  const units: Record<string, number> = { us: 1e-6, ms: 1e-3, s: 1, sec: 1, m: 60, min: 60, h: 3600, hr: 3600 };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)\s*([a-z]*)/gy;
  const compact = text.trim();
  let m: RegExpExecArray | null;
  while ((m = re.exec(compact)) !== null) {
    const unit = m[2] === '' ? 's' : m[2];
    if (!(unit in units)) throw new Error(`time span "${text}": unknown unit "${m[2]}"`);
    total += Number(m[1]) * units[unit];
    while (compact[re.lastIndex] === ' ') re.lastIndex++;
    if (re.lastIndex >= compact.length) break;
  }
  return total;
}

/** The boolean forms systemd accepts. */
export function isTrue(v: string | undefined): boolean {
  return v !== undefined && ['1', 'yes', 'y', 'true', 't', 'on'].includes(v.toLowerCase());
}
