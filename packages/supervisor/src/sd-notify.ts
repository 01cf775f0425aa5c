/**
 * systemd's notify protocol (sd_notify(3)): newline-separated KEY=VALUE
 * datagrams to the unix datagram socket named by $NOTIFY_SOCKET (a path, or an
 * abstract name written with a leading '@'). Node has no unix datagram client;
 * the send goes through libc in @flexilib/worker's ffi module (native/ffi.ts), loaded only when
 * NOTIFY_SOCKET is set. Without it every call is a silent no-op.
 *
 *   start ──> READY=1 (every worker listens)
 *   SIGHUP ──> RELOADING=1 + MONOTONIC_USEC ──> READY=1 (applied or refused)
 *   SIGTERM ──> STOPPING=1
 *   WATCHDOG_USEC set ──> WATCHDOG=1 every WATCHDOG_USEC/2
 *
 * A unit file using it: Type=notify (or Type=notify-reload with systemd ≥ 253),
 * NotifyAccess=main, KillMode=mixed, WatchdogSec=... (see docs/operations.md).
 */
import type { Logger } from 'pino';

type Send = (socketPath: string, message: string) => void;

export class SdNotify {
  private watchdog: NodeJS.Timeout | undefined;
  private failedOnce = false;

  private constructor(
    private readonly socketPath: string | undefined,
    private readonly sendFn: Send | undefined,
    private readonly watchdogUsec: number | undefined,
    private readonly log: Logger,
  ) {}

  /** From the environment: NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (sd_watchdog_enabled's rules). */
  static async fromEnv(env: NodeJS.ProcessEnv, log: Logger): Promise<SdNotify> {
    const socketPath = env.NOTIFY_SOCKET || undefined;
    if (!socketPath) return new SdNotify(undefined, undefined, undefined, log);
    const { sendUnixDatagram } = await import('@flexilib/worker');
    let watchdogUsec: number | undefined = Number(env.WATCHDOG_USEC);
    if (!Number.isSafeInteger(watchdogUsec) || watchdogUsec <= 0) watchdogUsec = undefined;
    if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== process.pid) watchdogUsec = undefined;
    return new SdNotify(socketPath, sendUnixDatagram, watchdogUsec, log);
  }

  get enabled(): boolean {
    return this.socketPath !== undefined;
  }

  /** Send KEY=VALUE lines in one datagram. */
  send(fields: Record<string, string | number>): void {
    if (!this.socketPath || !this.sendFn) return;
    const message = Object.entries(fields).map(([k, v]) => `${k}=${v}`).join('\n') + '\n';
    try {
      this.sendFn(this.socketPath, message);
    } catch (err) {
      // Warn once: a missing notify socket must not flood the log (every watchdog tick would).
      if (!this.failedOnce) this.log.warn({ code: 'FLX_NOTIFY_FAILED', socket: this.socketPath, err: (err as Error).message }, 'systemd notification failed');
      this.failedOnce = true;
    }
  }

  ready(status: string): void {
    this.send({ READY: 1, STATUS: status });
  }

  reloading(): void {
    // CLOCK_MONOTONIC in µs: Node's hrtime is CLOCK_MONOTONIC on Linux. Type=notify-reload wants it.
    this.send({ RELOADING: 1, MONOTONIC_USEC: String(process.hrtime.bigint() / 1000n), STATUS: 'reloading config' });
  }

  stopping(): void {
    this.send({ STOPPING: 1, STATUS: 'stopping: finishing requests in flight' });
  }

  status(text: string): void {
    this.send({ STATUS: text });
  }

  /** Ping the watchdog every WATCHDOG_USEC/2 while the event loop turns. */
  startWatchdog(): void {
    if (!this.watchdogUsec || this.watchdog) return;
    const every = Math.max(1, Math.floor(this.watchdogUsec / 2000));
    this.send({ WATCHDOG: 1 });
    this.watchdog = setInterval(() => this.send({ WATCHDOG: 1 }), every);
    this.watchdog.unref();
  }

  stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }
}
