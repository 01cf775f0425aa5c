/**
 * Entry point of a worker process, forked by the supervisor with node:cluster.
 * Receives its settings and config as the first IPC message (init-channel.ts), listens on the
 * supervisor's socket when told to (`listen`), and takes control messages (protocol.ts, handled in control.ts)
 * from the supervisor.
 */
import cluster from 'node:cluster';
import { createAccessLog } from './access-log.js';
import { WorkerControl } from './control.js';
import { gracefulStop } from './graceful-stop.js';
import { createHttpServer } from './http-server.js';
import { createLogger } from './logger.js';
import { libraryCopyDir, markerFile } from './marker-layout.js';
import { CallMarker } from './native/call-marker.js';
import { RequestMeter } from './metrics/request-meter.js';
import { LibraryRegistry, setPrivateCopyDir } from './native/library.js';
import { Slot } from './native/slot.js';
import { receiveInit } from './init-channel.js';
import type { FromWorker, ListenHandle } from './protocol.js';
import type { Router } from './router.js';
import { UpstreamRegistry } from './upstream/registry.js';
import { WasmRuntime } from './wasm/wasm-runtime.js';

const channel = await receiveInit();
const { init } = channel;
const { options } = init;
const log = createLogger({ level: options.logLevel, format: options.logFormat }, { role: 'worker' });
const workerId = cluster.worker?.id;
const marker = new CallMarker(init.runDir && workerId !== undefined ? markerFile(init.runDir, workerId) : undefined);
if (marker.error) log.warn({ err: marker.error }, 'call marker not shared: crashes in plugins will not be attributed to their route');
if (init.runDir && workerId !== undefined) setPrivateCopyDir(libraryCopyDir(init.runDir, workerId));
const libraries = new LibraryRegistry((file, event) => control.state.meter?.library(file, event));
const inlineSlot = new Slot(options.arenaBytes, options.maxHeaderBytes);

function send(msg: FromWorker): void {
  process.send?.(msg);
}

// The server needs the control's state and the control needs the server's stop:
// the stop function is bound once the server exists.
let stop: (why: string) => void = () => {};
let meterSeq = 0;
/** The metrics file for a route table; null (and a logged error) if it cannot be made. */
function openMeter(router: Router): RequestMeter | null {
  if (!options.metrics) return null;
  try {
    return new RequestMeter({ runDir: init.runDir, workerId: workerId ?? 0, seq: meterSeq++, executors: router.executors });
  } catch (err) {
    log.error({ runDir: init.runDir, err: (err as Error).message }, 'cannot create the metrics file; this worker serves without metrics');
    return null;
  }
}
const upstreams = new UpstreamRegistry(init.upstreams, (msg) => send(msg));
upstreams.startStats();
const wasm = new WasmRuntime({ arenaBytes: options.arenaBytes, maxBodyBytes: options.maxBodyBytes, maxHeaderBytes: options.maxHeaderBytes, log });
const control = new WorkerControl(init, { options, libraries, inlineSlot, marker, log, upstreams, wasm }, send, (why) => stop(why), (socket) => listen(socket), openMeter);
const access = options.accessLog ? createAccessLog(options.logFormat, log) : null;
const { server, lane } = createHttpServer(options, control.state, log, access);
stop = gracefulStop(server, lane, log, () => process.exit(0));

let listening = false;
/** Listen on the supervisor's socket (see the supervisor's listen-socket.ts): accept from it directly. */
function listen(socket: ListenHandle): void {
  if (listening) return;
  listening = true;
  server.listen(socket, () => {
    const addr = server.address();
    if (addr && typeof addr === 'object') send({ type: 'listening', port: addr.port, address: addr.address });
  });
}

channel.takeOver((msg, socket) => control.handle(msg, socket));
if (init.standby) send({ type: 'standby' });
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
