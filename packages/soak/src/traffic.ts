/**
 * The soak's load: on each route, a few loops each with one keep-alive
 * request in flight at a time, counting every request by outcome. A failure
 * is kept with its cause and the fault that was running when it happened;
 * a connection cut on a request in flight when a worker died (killed or
 * crashed) is counted apart, as the one failure the goals allow.
 */
import http from 'node:http';

export interface Death {
  /** When the supervisor reported the worker's exit (ms, Date.now()). */
  at: number;
  /** When the fault that killed it began. */
  since: number;
  fault: string;
}

export interface RouteCount {
  /** 200 answers. */
  ok: number;
  /** HTTP answers of any status (what the server's metrics count). */
  answered: number;
  /** Failures not explained by a dying worker. */
  failed: number;
  /** Connection cut while a worker died under the request. */
  inFlightOnDeadWorker: number;
}

export class Traffic {
  readonly counts = new Map<string, RouteCount>();
  /** "<fault>: <cause>" -> count, for failures only. */
  readonly causes = new Map<string, number>();
  /** First few failures in full, for the report. */
  readonly examples: string[] = [];
  readonly deaths: Death[] = [];
  /** The fault running now ("steady" between faults); set by the fault runner. */
  phase = 'steady';
  private readonly cut: Array<{ c: RouteCount; route: string; phase: string; started: number; ended: number; reused: boolean; cause: string }> = [];
  private running = true;
  private readonly loops: Promise<void>[] = [];
  private readonly agents: http.Agent[] = [];

  constructor(private readonly port: number) {}

  /** Start `concurrency` loops on `target`, counted under `route`. */
  start(route: string, target: string, concurrency: number): void {
    this.counts.set(route, { ok: 0, answered: 0, failed: 0, inFlightOnDeadWorker: 0 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    this.agents.push(agent);
    for (let i = 0; i < concurrency; i++) this.loops.push(this.loop(route, target, agent));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    for (const a of this.agents) a.destroy();
  }

  private async loop(route: string, target: string, agent: http.Agent): Promise<void> {
    const c = this.counts.get(route)!;
    while (this.running) {
      const started = Date.now();
      const phase = this.phase;
      const r = await once(this.port, target, agent);
      if ('status' in r) {
        c.answered++;
        if (r.status === 200) {
          c.ok++;
          continue;
        }
        this.fail(c, route, phase, `${r.status} ${r.body.split('\n')[0].slice(0, 160)}`);
        continue;
      }
      // A cut connection: whether a worker died under it is known once its death is reported.
      if (r.code === 'ECONNRESET') this.cut.push({ c, route, phase, started, ended: Date.now(), reused: r.reused, cause: `${r.code}: ${r.message}` });
      else this.fail(c, route, phase, `${r.code}: ${r.message}`);
      await sleep(5); // a refusing server must not turn the loop into a busy spin
    }
  }

  /**
   * Sort the cut requests (call after stop(), with every death recorded): one
   * cut while a worker was dying — begun before its death was reported, ended
   * after the fault began — was in flight on it, or sent on its keep-alive
   * connection just before the client saw that connection close.
   */
  classifyCuts(): void {
    for (const x of this.cut.splice(0)) {
      const dead = this.deaths.some((d) => x.ended >= d.since && (x.started <= d.at || (x.reused && x.started <= d.at + 250)));
      if (dead) x.c.inFlightOnDeadWorker++;
      else this.fail(x.c, x.route, x.phase, x.cause);
    }
  }

  private fail(c: RouteCount, route: string, phase: string, cause: string): void {
    c.failed++;
    const key = `${phase}: ${route}: ${cause}`;
    this.causes.set(key, (this.causes.get(key) ?? 0) + 1);
    if (this.examples.length < 20) this.examples.push(`${new Date().toISOString()} ${key}`);
  }
}

type Outcome = { status: number; body: string } | { code: string; message: string; reused: boolean };

function once(port: number, target: string, agent: http.Agent): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: target, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ code: err.code ?? 'ERROR', message: err.message, reused: req.reusedSocket }));
    });
    req.setTimeout(15_000, () => req.destroy(Object.assign(new Error('no answer within 15 s'), { code: 'TIMEOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ code: err.code ?? 'ERROR', message: err.message, reused: req.reusedSocket }));
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
