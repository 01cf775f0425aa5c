/**
 * Entry point of a worker process, forked by the supervisor with node:cluster.
 * Reads its settings and config from the environment, listens on the shared
 * port, and then takes control messages (protocol.ts) from the supervisor.
 */
import cluster from 'node:cluster';
import { createAccessLog } from './access-log.js';
import { buildRouter } from './build-router.js';
import { createHttpServer, type ServerState } from './http-server.js';
import { createLogger } from './logger.js';
import { RequestMeter } from './metrics/request-meter.js';
import { LibraryRegistry } from './native/library.js';
import { Slot } from './native/slot.js';
import { WORKER_INIT_ENV, type FromWorker, type ToWorker, type WorkerInit } from './protocol.js';
import type { Router } from './router.js';

const init = JSON.parse(process.env[WORKER_INIT_ENV] ?? 'null') as WorkerInit | null;
if (!init) {
  process.stderr.write(`flexilib worker: ${WORKER_INIT_ENV} is not set; workers are started by the flexilib command\n`);
  process.exit(2);
}
const { options } = init;
const log = createLogger({ level: options.logLevel, format: options.logFormat }, { role: 'worker' });
const workerId = cluster.worker?.id ?? 0;
let meterSeq = 0;
const libraries = new LibraryRegistry((file, event) => state.meter?.library(file, event));
const inlineSlot = new Slot(options.arenaBytes, options.maxHeaderBytes);
const deps = { options, libraries, inlineSlot, log };
const state: ServerState = { router: buildRouter(init.config, deps), meter: null };
state.meter = openMeter(state.router);
const access = options.accessLog ? createAccessLog(options.logFormat, log) : null;

/** The metrics file for a route table; null (and a logged error) if it cannot be made. */
function openMeter(router: Router): RequestMeter | null {
  if (!options.metrics) return null;
  try {
    return new RequestMeter({ runDir: init!.runDir, workerId, seq: meterSeq++, executors: router.executors });
  } catch (err) {
    log.error({ runDir: init!.runDir, err: (err as Error).message }, 'cannot create the metrics file; this worker serves without metrics');
    return null;
  }
}

const server = createHttpServer(options, state, log, access);

function send(msg: FromWorker): void {
  process.send?.(msg);
}

server.listen({ port: options.port, host: options.host }, () => {
  const addr = server.address();
  if (addr && typeof addr === 'object') send({ type: 'listening', port: addr.port, address: addr.address });
});

process.on('message', (msg: ToWorker) => {
  if (msg.type === 'config') {
    const old = state.router;
    const oldMeter = state.meter;
    state.router = buildRouter(msg.config, deps);
    // A worker started with metrics off never counts (its server has no hook).
    if (oldMeter) state.meter = openMeter(state.router);
    oldMeter?.retire();
    old.close();
    send({ type: 'config-applied', generation: msg.generation });
  } else if (msg.type === 'reload-library') {
    for (const lib of libraries.all()) {
      if (lib.file !== msg.file) continue;
      try {
        lib.load();
        send({ type: 'library-reloaded', file: msg.file, ok: true });
      } catch (err) {
        log.error({ library: msg.file, err: (err as Error).message }, 'library reload failed; the previous version keeps serving');
        send({ type: 'library-reloaded', file: msg.file, ok: false, error: (err as Error).message });
      }
    }
  }
});
