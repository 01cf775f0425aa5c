/**
 * A real Prometheus (Debian's `prometheus` binary) for tests: its own config
 * and a temporary storage folder, listening on 127.0.0.1, scraping the given
 * targets every second. A missing binary fails the test naming the package.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, request, sleep } from '@flexilib/test-support';

export interface PrometheusServer {
  port: number;
  /** Run an instant query through the HTTP API; resolves with its result vector. */
  query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  stop(): Promise<void>;
  output(): string;
}

export function prometheusBin(): string {
  const bin = spawnSync('sh', ['-c', 'command -v prometheus'], { encoding: 'utf8' }).stdout.trim();
  if (!bin) throw new Error('prometheus is missing: install Debian\'s "prometheus" package (apt-get install -y prometheus), which provides /usr/bin/prometheus');
  return bin;
}

export async function startPrometheus(dir: string, job: string, target: string): Promise<PrometheusServer> {
  const bin = prometheusBin();
  mkdirSync(dir, { recursive: true });
  const config = path.join(dir, 'prometheus.yml');
  writeFileSync(config, `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ${job}\n    static_configs:\n      - targets: ['${target}']\n`);
  const port = await freePort();
  let out = '';
  const child: ChildProcess = spawn(bin, [
    `--config.file=${config}`,
    `--storage.tsdb.path=${path.join(dir, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--storage.tsdb.retention.time=1h',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${out}`);
    try {
      if ((await request(port, '/-/ready', { timeoutMs: 1000 })).status === 200) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus did not become ready in 30 s:\n${out}`);
    }
    await sleep(200);
  }
  return {
    port,
    output: () => out,
    stop,
    async query(expr) {
      const r = await request(port, `/api/v1/query?query=${encodeURIComponent(expr)}`, { timeoutMs: 10_000 });
      const body = JSON.parse(r.body);
      if (r.status !== 200 || body.status !== 'success') throw new Error(`query ${expr} answered ${r.status}: ${r.body}`);
      return body.data.result;
    },
  };
}
