/** Scrape /metrics, parse the text format, and run promtool on it. */
import { spawnSync } from 'node:child_process';
import { request } from './http.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  text: string;
  samples: Sample[];
  /** Sum of every sample named `name` whose labels include `match`. */
  sum(name: string, match?: Record<string, string>): number;
  /** The samples named `name`. */
  series(name: string): Sample[];
}

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const v = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

export async function scrape(adminPort: number): Promise<Scrape> {
  const r = await request(adminPort, '/metrics');
  if (r.status !== 200) throw new Error(`GET /metrics answered ${r.status}: ${r.body}`);
  if (!String(r.headers['content-type']).startsWith('text/plain; version=0.0.4')) throw new Error(`GET /metrics content-type ${r.headers['content-type']}`);
  const samples = parseMetrics(r.body);
  const matches = (s: Sample, match: Record<string, string> = {}) => Object.entries(match).every(([k, v]) => s.labels[k] === v);
  return {
    text: r.body,
    samples,
    series: (name) => samples.filter((s) => s.name === name),
    sum: (name, match) => samples.filter((s) => s.name === name && matches(s, match)).reduce((a, s) => a + s.value, 0),
  };
}

/**
 * The promtool binary (Debian's `prometheus` package). Installed with apt-get
 * when missing and running as root (a fresh CI machine); otherwise an error
 * saying what to install.
 */
export function promtool(): string {
  const found = () => spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).stdout.trim();
  let bin = found();
  if (bin) return bin;
  if (process.getuid?.() === 0) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'prometheus'], { encoding: 'utf8', env, timeout: 300_000 });
    if (r.status !== 0) {
      spawnSync('apt-get', ['update'], { encoding: 'utf8', env, timeout: 300_000 });
      r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'prometheus'], { encoding: 'utf8', env, timeout: 300_000 });
    }
    bin = found();
    if (bin) return bin;
    throw new Error(`promtool is missing and "apt-get install -y prometheus" failed:\n${r.stderr}`);
  }
  throw new Error('promtool is missing: install Debian\'s "prometheus" package (apt-get install -y prometheus), which provides /usr/bin/promtool');
}

/** Run `promtool check metrics` on a scrape; returns its output, throws when it finds problems. */
export function promtoolCheck(text: string): string {
  const r = spawnSync(promtool(), ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  const out = `${r.stdout}${r.stderr}`;
  if (r.status !== 0) throw new Error(`promtool check metrics failed (exit ${r.status}):\n${out}`);
  return out;
}
