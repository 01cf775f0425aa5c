/**
 * Threaded plugin calls that ran past their route's timeout and have not
 * returned. Their client already got a 504, but a native thread cannot be
 * cancelled: it holds one of libuv's pool threads (which every threaded route
 * and file operation of the worker shares) for as long as it runs, and
 * process.exit() would wait for it forever (node joins the pool's threads at
 * exit). So the first one asks the supervisor to replace this worker; the
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
