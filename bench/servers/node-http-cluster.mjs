// The baseline: a bare node:http cluster, node's defaults throughout, answering
// what the C example plugin answers — X-custom-foo: bar, content-type:
// text/plain, and as body:
//   BENCH_HANDLER=count (default)  " N", N being the number of request headers (its default path)
//   BENCH_HANDLER=echo             "METHOD TARGET\n" and the request body, read whole first (its /echo path)
// The handler is chosen at start, so neither pays for the other's test per request.
// Plain JavaScript (no loader) so its workers' memory is node's own.
//
//   BENCH_WORKERS=2 node node-http-cluster.mjs   prints {"msg":"listening","port":N}
import cluster from 'node:cluster';
import { runPrimary } from './cluster-primary.mjs';
import http from 'node:http';

const workers = Number(process.env.BENCH_WORKERS ?? 2);
const handler = process.env.BENCH_HANDLER ?? 'count';

function count(req, res) {
  const body = ' ' + (req.rawHeaders.length >>> 1);
  res.writeHead(200, ['X-custom-foo', 'bar', 'content-type', 'text/plain', 'content-length', String(body.length)]);
  res.end(body);
}

function echo(req, res) {
  const chunks = [Buffer.from(`${req.method} ${req.url}\n`, 'latin1')];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    res.writeHead(200, ['X-custom-foo', 'bar', 'content-type', 'text/plain', 'content-length', String(body.length)]);
    res.end(body);
  });
}

const handlers = { count, echo };
if (!handlers[handler]) {
  process.stderr.write(`BENCH_HANDLER: "${handler}" is not one of ${Object.keys(handlers).join(', ')}\n`);
  process.exit(2);
}

if (cluster.isPrimary) {
  runPrimary(workers);
} else {
  http.createServer(handlers[handler]).listen(0, '127.0.0.1');
}
