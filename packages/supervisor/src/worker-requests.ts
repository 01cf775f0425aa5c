/**
 * The one way to ask a worker something and wait for its answer.
 *
 *   request(w, msg) ── msg + requestId ──> worker ── reply + same requestId ──> resolves
 *                   └─ no reply in time: FLX_WORKER_NO_REPLY; the worker died: FLX_WORKER_GONE
 *
 * Which reply answers which request is declared once, beside the message
 * union (protocol.ts's WorkerRequest, WorkerReply and REPLY_OF), so the reply's
 * type follows from the request's. Every request gets a fresh number; a reply
 * whose number is not waited for (it came after its request timed out) is
 * dropped, never taken for a later request's. requestAll() asks several workers
 * the same thing and resolves with each one's outcome.
 *
 * WorkerPool owns one of these (pool.request(), pool.requestAll()); it sends
 * the requests and hands over every reply and every death.
 */
import type { Logger } from 'pino';
import { FlexiError, REPLY_OF, type FromWorker, type ReplyTo, type ToWorker, type WorkerRequest } from '@flexilib/contract';

/** How long a request waits for its reply unless the caller says otherwise. */
export const REQUEST_TIMEOUT_MS = 10_000;

/** What the channel needs to know of a worker. */
export interface RequestTarget {
  readonly id: number;
  readonly pid: number;
  readonly exited: boolean;
}

/** A request that got no reply: FLX_WORKER_NO_REPLY (timed out) or FLX_WORKER_GONE (the worker died). */
export class WorkerRequestError extends FlexiError {
  constructor(
    override readonly code: 'FLX_WORKER_NO_REPLY' | 'FLX_WORKER_GONE',
    readonly workerId: number,
    readonly workerPid: number,
    readonly request: WorkerRequest['type'],
    message: string,
  ) {
    super(code, message);
    this.name = 'WorkerRequestError';
  }
}

/** One worker's part of a requestAll(): its reply, or why there is none. */
export type RequestOutcome<W, M extends WorkerRequest> = { worker: W; reply: ReplyTo<M>; error?: undefined } | { worker: W; reply?: undefined; error: WorkerRequestError };

interface Pending<W> {
  worker: W;
  type: WorkerRequest['type'];
  resolve(reply: FromWorker): void;
  reject(err: WorkerRequestError): void;
  timer: NodeJS.Timeout;
}

const REPLY_TYPES: ReadonlySet<string> = new Set(Object.values(REPLY_OF));

export class WorkerRequests<W extends RequestTarget> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending<W>>();

  constructor(private readonly send: (w: W, msg: ToWorker) => void, private readonly log: Logger) {}

  /** Ask `w`; resolves with its reply, rejects with a WorkerRequestError. */
  request<M extends WorkerRequest>(w: W, msg: M, timeoutMs = REQUEST_TIMEOUT_MS): Promise<ReplyTo<M>> {
    if (w.exited) return Promise.reject(gone(w, msg.type));
    const requestId = this.nextId++;
    return new Promise<ReplyTo<M>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new WorkerRequestError('FLX_WORKER_NO_REPLY', w.id, w.pid, msg.type, `worker ${w.pid} did not answer "${msg.type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.pending.set(requestId, { worker: w, type: msg.type, resolve: resolve as (reply: FromWorker) => void, reject, timer });
      this.send(w, { ...msg, requestId } as ToWorker);
    });
  }

  /** Ask each of `workers` the same; resolves (never rejects) once each replied or failed. */
  requestAll<M extends WorkerRequest>(workers: readonly W[], msg: M, timeoutMs = REQUEST_TIMEOUT_MS): Promise<Array<RequestOutcome<W, M>>> {
    return Promise.all(
      workers.map((worker) =>
        this.request(worker, msg, timeoutMs).then(
          (reply): RequestOutcome<W, M> => ({ worker, reply }),
          (error: WorkerRequestError): RequestOutcome<W, M> => ({ worker, error }),
        ),
      ),
    );
  }

  /** A message from `w`: true when it is a reply (taken, or dropped as late), which nobody else handles. */
  reply(w: W, msg: FromWorker): boolean {
    if (!REPLY_TYPES.has(msg.type)) return false;
    const requestId = (msg as { requestId: number }).requestId;
    const p = this.pending.get(requestId);
    if (!p || p.worker !== w || REPLY_OF[p.type] !== msg.type) {
      this.log.debug({ workerPid: w.pid, reply: msg.type, requestId }, 'dropped a reply nobody waits for (late, or not this worker\'s)');
      return true;
    }
    this.pending.delete(requestId);
    clearTimeout(p.timer);
    p.resolve(msg);
    return true;
  }

  /** `w` died: its pending requests fail with FLX_WORKER_GONE. */
  gone(w: W): void {
    for (const [requestId, p] of this.pending) {
      if (p.worker !== w) continue;
      this.pending.delete(requestId);
      clearTimeout(p.timer);
      p.reject(gone(w, p.type));
    }
  }
}

function gone(w: RequestTarget, type: WorkerRequest['type']): WorkerRequestError {
  return new WorkerRequestError('FLX_WORKER_GONE', w.id, w.pid, type, `worker ${w.pid} died before answering "${type}"`);
}
