/**
 * One real worker process forked as the supervisor forks it (worker-main.js
 * with FLEXILIB_WORKER and an IPC channel): its init answers its hello, then
 * it is handed a socket bound here with `listen`. For tests that talk to a
 * worker's control channel directly.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { DEFAULT_WORKER_OPTIONS, WORKER_ENV, type Config, type FromWorker, type ToWorker, type WorkerInit, type WorkerInitMessage } from '@flexilib/contract';
import { eventually } from '@flexilib/test-support';

const workerMain = fileURLToPath(new URL('../dist/worker-main.js', import.meta.url));

export interface ForkedWorker {
  child: ChildProcess;
  port: number;
  /** Every IPC message it sent, in order. */
  messages: FromWorker[];
  /** Its stdout lines (JSON logs). */
  lines: string[];
}

export interface ForkOptions {
  /** node's own arguments (default: none, so the test's loader does not run in the worker). */
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
}

export async function forkWorker(config: Config, opts: ForkOptions = {}): Promise<ForkedWorker> {
  const init: WorkerInit = {
    options: { ...DEFAULT_WORKER_OPTIONS, host: '127.0.0.1', port: 0, logFormat: 'json', accessLog: false, metrics: false },
    config,
    generation: 0,
    quarantined: [],
    runDir: '',
    upstreams: { pools: [] },
  };
  // The socket to serve on, bound here as the supervisor binds it and handed over with `listen`.
  const socket = net.createServer();
  socket.listen(0, '127.0.0.1');
  await once(socket, 'listening');
  const child = fork(workerMain, [], {
    execArgv: opts.execArgv ?? [],
    env: { ...process.env, ...opts.env, [WORKER_ENV]: '1' },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  // The init answers the worker's hello, then the socket: as the supervisor does.
  child.once('message', () => {
    child.send({ type: 'init', init } satisfies WorkerInitMessage);
    child.send({ type: 'listen' } satisfies ToWorker, socket, () => socket.close());
  });
  const messages: FromWorker[] = [];
  const lines: string[] = [];
  child.on('message', (m: FromWorker) => messages.push(m));
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (c: string) => lines.push(...c.split('\n').filter(Boolean)));
  try {
    const listening = await eventually('listening', () => messages.find((m) => m.type === 'listening'));
    return { child, port: (listening as { port: number }).port, messages, lines };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}
