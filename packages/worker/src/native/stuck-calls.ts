/**
 * Threaded plugin calls that ran past their route's timeout and have not
 * returned. Their client already got a 504, but a native thread cannot be
 * cancelled: it holds its route's thread (thread-ring.ts) for as long as it
 * runs, and process.exit() would tear the process down (library destructors,
 * V8's heap) under code still running. So the first one asks the supervisor to replace this worker; the
 * worker then drains its other requests and, if calls are still stuck, ends
 * itself with SIGKILL instead of exit().
 */
export class StuckCalls {
  /** Calls past their timeout that are still running. */
  count = 0;
  private asked = false;

  constructor(private readonly askRetire: (reason: string) => void) {}

  add(route: string, library: string, timeoutMs: number): void {
    this.count++;
    if (this.asked) return;
    this.asked = true;
    this.askRetire(`a threaded call of route "${route}" (library ${library}) did not return within ${timeoutMs} ms`);
  }

  /** A stuck call returned after all: its thread is free again. */
  returned(): void {
    this.count--;
  }
}
