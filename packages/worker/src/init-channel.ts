/**
 * The worker's end of the start-up handshake: its WorkerInit arrives as the
 * first IPC message (protocol.ts, WorkerInitMessage) — any config size fits,
 * where an environment variable failed to spawn at ~128 KiB (E2BIG). A message
 * that arrives before its listener is lost, so the worker asks (`hello`) once
 * it listens, and the supervisor answers with the init.
 *
 * Control messages the supervisor sends right behind the init (`listen` with
 * its socket, an upstream change) can arrive before the worker is set up: they
 * are kept, in order, and handed over with takeOver().
 */
import { WORKER_ENV, type FromWorker, type ListenHandle, type ToWorker, type WorkerInit, type WorkerInitMessage } from '@flexilib/contract';

export interface InitChannel {
  init: WorkerInit;
  /** Route every message from now on to `handle`, the ones kept so far first. */
  takeOver(handle: (msg: ToWorker, socket?: ListenHandle) => void): void;
}

/** Resolves with the init; exits (code 2) when this process was not started by the flexilib supervisor. */
export function receiveInit(): Promise<InitChannel> {
  if (!process.send || process.env[WORKER_ENV] !== '1') {
    process.stderr.write(`flexilib worker: started without its supervisor (${WORKER_ENV} and an IPC channel); workers are started by the flexilib command\n`);
    process.exit(2);
  }
  return new Promise((resolve) => {
    const kept: Array<[ToWorker, ListenHandle | undefined]> = [];
    let init: WorkerInit | undefined;
    const early = (msg: ToWorker | WorkerInitMessage, socket?: ListenHandle) => {
      if (init) {
        kept.push([msg as ToWorker, socket]);
      } else if (msg?.type === 'init') {
        init = msg.init;
        resolve({
          init,
          takeOver(handle) {
            process.off('message', early);
            process.on('message', handle);
            for (const [m, socket] of kept.splice(0)) handle(m, socket);
          },
        });
      }
    };
    process.on('message', early);
    process.send!({ type: 'hello' } satisfies FromWorker);
  });
}
