/**
 * Whether an instance thread that has finished no call for a while is stuck
 * in its call, or merely waiting for a core. Only the first is helped by
 * another instance: on a loaded machine (two cores, other processes) a thread
 * of a module whose calls take microseconds was seen to go 100 ms without a
 * turn, and each such pause started up to `instances` threads of ~10 MiB each,
 * none of which served faster.
 *
 * The kernel tells, over a window of PROBE_MS or more (from the previous look
 * in the same pause), from the thread's CPU time (/proc/self/task/TID/schedstat,
 * first field, current to a scheduler tick) and its state (/proc/self/task/TID/stat):
 *   - PROBE_CPU_MS per PROBE_MS or more on a CPU without finishing the call: a slow call (stuck);
 *   - else runnable (R): waiting for a core, or its vCPU stolen (not stuck);
 *   - else sleeping (S, D): inside the call (poll_oneoff), a slow call (stuck).
 * (schedstat's run-queue delay is no use here: it is added only once the
 * thread gets a core.) Read only while the thread makes no progress, never per
 * call. Without /proc (tid 0, or a file unreadable) every pause counts as
 * stuck, as before.
 *
 * The window is as long as the event loop takes to look again: judged by CPU
 * share, not a fixed span, so a worker itself kept from the CPU (a loaded
 * machine: looks 100 ms apart) still sees a runaway call as stuck. (When a
 * look older than 4 windows was discarded as stale, a runaway was never
 * judged stuck on a loaded CI machine, and calls waited out its time limit.)
 */
import { readFileSync } from 'node:fs';

/** The window a verdict is made over (and kept for). */
export const PROBE_MS = 20;
/** CPU time within a window that no quick call takes. */
const PROBE_CPU_MS = 1;

export class RunQueueProbe {
  private readonly schedstat: string;
  private readonly stat: string;
  /** performance.now() of the last sample (-1: none), and the thread's figures then (ns). */
  private at = -1;
  private cpuNs = 0;
  private verdict = true;

  /** `tid`: the thread's kernel id (0: unknown). */
  constructor(private readonly tid: number) {
    this.schedstat = `/proc/self/task/${tid}/schedstat`;
    this.stat = `/proc/self/task/${tid}/stat`;
  }

  /**
   * Whether the thread counts as stuck in the call it has been in since
   * `pausedSince` (performance.now() of its last progress). The first look at
   * a pause only samples (false: judged at the next look, PROBE_MS or more
   * later); a verdict holds for PROBE_MS.
   */
  stuck(now: number, pausedSince: number): boolean {
    if (this.tid === 0) return true;
    if (this.at >= pausedSince && now - this.at < PROBE_MS) return this.verdict;
    let cpuNs: number;
    let state: string;
    try {
      const sched = readFileSync(this.schedstat, 'latin1');
      cpuNs = Number(sched.slice(0, sched.indexOf(' ')));
      // "tid (name) S ...": the name may hold spaces and parentheses, the state follows the last ')'.
      const st = readFileSync(this.stat, 'latin1');
      state = st.charAt(st.lastIndexOf(')') + 2);
    } catch {
      return true;
    }
    // A look from an earlier pause says nothing of this one (the thread ran other calls since): sample again.
    const samePause = this.at >= pausedSince;
    const windowMs = now - this.at;
    const dCpuMs = (cpuNs - this.cpuNs) / 1e6;
    this.at = now;
    this.cpuNs = cpuNs;
    this.verdict = samePause ? dCpuMs * PROBE_MS >= PROBE_CPU_MS * windowMs || state !== 'R' : false;
    return this.verdict;
  }
}

