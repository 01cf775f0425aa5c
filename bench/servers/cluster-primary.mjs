// The primary of the bench's bare Node.js clusters (node-http-cluster.mjs,
// node-net-floor.mjs, node-net-proxy-floor.mjs): forks the workers, prints
// {"msg":"listening","port":N} once all listen, and on SIGTERM disconnects
// them and exits when the last is gone.
import cluster from 'node:cluster';

export function runPrimary(workers) {
  let listening = 0;
  let stopping = false;
  cluster.on('listening', (_worker, address) => {
    if (++listening === workers) process.stdout.write(JSON.stringify({ msg: 'listening', port: address.port }) + '\n');
  });
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) process.stdout.write(JSON.stringify({ msg: 'worker died', pid: worker.process.pid, code, signal }) + '\n');
    if (Object.keys(cluster.workers ?? {}).length === 0 && stopping) process.exit(0);
  });
  process.on('SIGTERM', () => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.disconnect();
  });
  for (let i = 0; i < workers; i++) cluster.fork();
}
