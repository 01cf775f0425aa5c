/**
 * Entry point of a worker process, forked by the supervisor with node:cluster.
 * Reads its settings and config from the environment, listens on the shared
 * port, and then takes control messages (protocol.ts) from the supervisor.
 */
import { createAccessLog } from './access-log.js';
import { buildRouter } from './build-router.js';
import { createHttpServer, type ServerState } from './http-server.js';
import { createLogger } from './logger.js';
import { LibraryRegistry } from './native/library.js';
import { Slot } from './native/slot.js';
import { WORKER_INIT_ENV, type FromWorker, type ToWorker, type WasmServiceSpec, type WorkerInit } from './protocol.js';
import { WasmRuntime } from './wasm/wasm-runtime.js';

const init = JSON.parse(process.env[WORKER_INIT_ENV] ?? 'null') as WorkerInit | null;
if (!init) {
  process.stderr.write(`flexilib worker: ${WORKER_INIT_ENV} is not set; workers are started by the flexilib command\n`);
  process.exit(2);
}
const { options } = init;
const log = createLogger({ level: options.logLevel, format: options.logFormat }, { role: 'worker' });
const libraries = new LibraryRegistry();
const inlineSlot = new Slot(options.arenaBytes, options.maxHeaderBytes);
const wasm = new WasmRuntime({ arenaBytes: options.arenaBytes, maxBodyBytes: options.maxBodyBytes, maxHeaderBytes: options.maxHeaderBytes, log });
const deps = { options, libraries, inlineSlot, log, wasm };
let config = init.config;
let services: WasmServiceSpec[] = init.services ?? [];
const state: ServerState = { router: buildRouter(config, deps, services) };

/** Swap in a router for the current config and services; requests in flight finish on the old one. */
function rebuild(): void {
  const old = state.router;
  state.router = buildRouter(config, deps, services);
  old.close();
}
const access = options.accessLog ? createAccessLog(options.logFormat, log) : null;
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
    config = msg.config;
    rebuild();
    send({ type: 'config-applied', generation: msg.generation });
  } else if (msg.type === 'wasm-services') {
    services = msg.services;
    rebuild();
    send({ type: 'wasm-services-applied', generation: msg.generation });
  } else if (msg.type === 'reload-library') {
    if (wasm.reload(msg.file)) {
      log.info({ module: msg.file }, 'WASM module changed: new instances will run the new version');
      send({ type: 'library-reloaded', file: msg.file, ok: true });
    }
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
