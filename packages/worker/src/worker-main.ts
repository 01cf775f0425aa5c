/**
 * Entry point of a worker process, forked by the supervisor with node:cluster.
 * Receives its settings and config as the first IPC message (init-channel.ts), listens on the
 * supervisor's socket when told to (`listen`), and takes control messages (protocol.ts, handled in control.ts)
 * from the supervisor.
 */
import cluster from 'node:cluster';
import { createAccessLog } from './observe/access-log.js';
import { WorkerControl } from './control.js';
import { gracefulStop } from './http/graceful-stop.js';
import { createHttpServer } from './http/http-server.js';
import { createLogger, stdoutWriter } from './observe/logger.js';
import { libraryCopyDir, markerFile } from '@flexilib/contract';
import { CallMarker } from './native/call-marker.js';
import { RequestMeter } from './observe/metrics/request-meter.js';
import { ABI_NAMES } from './native/flexilib-interface.js';
import { LibraryRegistry, setPrivateCopyDir } from './native/library.js';
import { Slot } from './native/slot.js';
import { toWorkerProblem, type FromWorker, type ListenHandle, type ToWorker } from '@flexilib/contract';
import { receiveInit } from './init-channel.js';
import { StuckCalls } from './native/stuck-calls.js';
import { useVerifiedCopies } from './native/verified-copy.js';
import type { Router } from './routing/router.js';
import { UpstreamCounterFile } from './upstream/counter-file.js';
import { UpstreamRegistry } from './upstream/registry.js';
import { ExecutorKinds, kindsOf } from './routing/executor-kinds.js';

const channel = await receiveInit();
const { init } = channel;
const { options } = init;
const log = createLogger({ level: options.logLevel, format: options.logFormat }, { role: 'worker' });
const workerId = cluster.worker?.id;
const marker = new CallMarker(init.runDir && workerId !== undefined ? markerFile(init.runDir, workerId) : undefined);
if (marker.error) log.warn({ err: marker.error }, 'call marker not shared: crashes in plugins will not be attributed to their route');
if (init.runDir && workerId !== undefined) setPrivateCopyDir(libraryCopyDir(init.runDir, workerId));
if (init.runDir) useVerifiedCopies(init.runDir);
const libraries = new LibraryRegistry((file, event, abi) => {
  control.state.meter?.library(file, event);
  if (abi) log.info({ library: file, interface: abi }, `library ${event} through ${ABI_NAMES[abi]}`);
});
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
const upstreams = new UpstreamRegistry(init.upstreams, (msg) => send(msg), new UpstreamCounterFile(workerId !== undefined ? init.runDir : undefined, workerId ?? 0));
// Only the executor kinds the first route table uses are loaded (a later config loads more).
const kinds = new ExecutorKinds({ options, log, runDir: init.runDir, lambdaPort: init.lambdaPort });
await kinds.load(kindsOf(init.config.routes, init.services));
const stuck = new StuckCalls((reason) => {
  log.warn({ reason }, `${reason}: asking to be replaced; requests in flight finish here`);
  send({ type: 'retire', reason });
});
const control = new WorkerControl(init, { options, libraries, inlineSlot, marker, log, upstreams, stuck, kinds }, send, (why) => stop(why), (socket) => listen(socket), openMeter);
const access = options.accessLog ? createAccessLog(options.logFormat, log) : null;
const { server, lane } = createHttpServer(options, control.state, log, access);
stop = gracefulStop(server, lane, log, () => {
  kinds.close();
  // exit() would run the process's teardown under a plugin thread that never returns (stuck-calls.ts).
  if (stuck.count > 0) {
    log.warn({ calls: stuck.count }, `drained; ${stuck.count} plugin call(s) never returned: ending with SIGKILL`);
    stdoutWriter().flush();
    process.kill(process.pid, 'SIGKILL');
  }
  process.exit(0);
});

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

channel.takeOver((msg, socket) => {
  const problem = toWorkerProblem(msg);
  if (problem) log.error({ problem }, 'dropped a malformed message from the supervisor');
  else control.handle(msg as ToWorker, socket);
});
if (init.standby) send({ type: 'standby' });
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
