// The baseline: a bare node:http cluster, node's defaults throughout, answering
// what the C example plugin answers on its default path — X-custom-foo: bar,
// content-type: text/plain and the body " N", N being the number of request
// headers. Plain JavaScript (no loader) so its workers' memory is node's own.
//
//   BENCH_WORKERS=2 node node-http-cluster.mjs   prints {"msg":"listening","port":N}
import cluster from 'node:cluster';
import http from 'node:http';

const workers = Number(process.env.BENCH_WORKERS ?? 2);

if (cluster.isPrimary) {
  let listening = 0;
  cluster.on('listening', (_worker, address) => {
    if (++listening === workers) process.stdout.write(JSON.stringify({ msg: 'listening', port: address.port }) + '\n');
  });
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) process.stdout.write(JSON.stringify({ msg: 'worker died', pid: worker.process.pid, code, signal }) + '\n');
    if (Object.keys(cluster.workers ?? {}).length === 0 && stopping) process.exit(0);
  });
  let stopping = false;
  process.on('SIGTERM', () => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.disconnect();
  });
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  http
    .createServer((req, res) => {
      const body = ' ' + (req.rawHeaders.length >>> 1);
      res.writeHead(200, ['X-custom-foo', 'bar', 'content-type', 'text/plain', 'content-length', String(body.length)]);
      res.end(body);
    })
    .listen(0, '127.0.0.1');
}
