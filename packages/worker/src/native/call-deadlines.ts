/**
 * The time limit of a threaded route's calls, with one timer for all of them.
 *
 * Every call of a route gets the same limit, so deadlines come in the order
 * calls start: a list in that order has the earliest first, and one timer,
 * armed for the head, serves every call. A call that returns in time is just
 * unlinked (no timer to clear); when the timer fires it expires what is due
 * and re-arms for the new head. A setTimeout and clearTimeout per call (a
 * Timeout object, a timer-list insert and removal) was a measurable part of a
 * threaded request.
 */
import { performance } from 'node:perf_hooks';

/** An entry of the list: the call object itself carries its links (nothing allocated per call). */
export interface Deadlined {
  /** performance.now() past which the call is late. */
  deadline: number;
  prevDue: Deadlined | null;
  nextDue: Deadlined | null;
  /** In the list (started, not yet returned or expired). */
  due: boolean;
}

export class CallDeadlines<T extends Deadlined> {
  private head: T | null = null;
  private tail: T | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly onTimer = () => this.fire();

  constructor(
    private readonly ms: number,
    /** A call passed its deadline (already unlinked). */
    private readonly expired: (call: T) => void,
  ) {}

  add(call: T): void {
    call.deadline = performance.now() + this.ms;
    call.due = true;
    call.nextDue = null;
    call.prevDue = this.tail;
    if (this.tail === null) this.head = call;
    else this.tail.nextDue = call;
    this.tail = call;
    if (this.timer === null) this.arm(this.ms);
  }

  remove(call: T): void {
    if (!call.due) return;
    call.due = false;
    const prev = call.prevDue as T | null;
    const next = call.nextDue as T | null;
    if (prev === null) this.head = next;
    else prev.nextDue = next;
    if (next === null) this.tail = prev;
    else next.prevDue = prev;
    call.prevDue = call.nextDue = null;
  }

  private fire(): void {
    this.timer = null;
    const now = performance.now();
    let call = this.head;
    while (call !== null && call.deadline <= now) {
      this.remove(call);
      this.expired(call);
      call = this.head;
    }
    // The loop's clock is in whole milliseconds: a timer may fire a fraction early.
    if (call !== null) this.arm(Math.max(1, Math.ceil(call.deadline - now)));
  }

  /** Unref'd: it may outlive the last call by up to `ms`, and a call in flight keeps the process alive by itself. */
  private arm(ms: number): void {
    this.timer = setTimeout(this.onTimer, ms);
    this.timer.unref();
  }
}
