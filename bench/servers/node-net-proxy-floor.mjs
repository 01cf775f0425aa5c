// The floor of a Node.js proxy on this machine: a node:cluster of bare
// node:net servers, each client connection tied to one keep-alive connection
// to the origin, bytes forwarded as they come both ways. No HTTP at all: no
// parsing, no header rewriting, no pooling, no timeouts. No real proxy can be
// this lean; it says what two node sockets per request cost, so the upstream
// goal (against nginx proxy_pass) can be read against what Node.js can reach.
// Plain JavaScript (no loader), like the baseline.
//
//   BENCH_WORKERS=2 BENCH_ORIGIN_PORT=N node node-net-proxy-floor.mjs   prints {"msg":"listening","port":N}
import cluster from 'node:cluster';
import { runPrimary } from './cluster-primary.mjs';
import net from 'node:net';

const workers = Number(process.env.BENCH_WORKERS ?? 2);
const originPort = Number(process.env.BENCH_ORIGIN_PORT);
if (!(originPort > 0)) throw new Error('BENCH_ORIGIN_PORT: the origin\'s port is required');

if (cluster.isPrimary) {
  runPrimary(workers);
} else {
  net
    .createServer({ noDelay: true }, (client) => {
      const origin = net.connect({ host: '127.0.0.1', port: originPort, noDelay: true });
      client.on('data', (chunk) => origin.write(chunk));
      origin.on('data', (chunk) => client.write(chunk));
      const close = () => {
        client.destroy();
        origin.destroy();
      };
      client.on('close', close);
      origin.on('close', close);
      client.on('error', close);
      origin.on('error', close);
    })
    .listen(0, '127.0.0.1');
}
