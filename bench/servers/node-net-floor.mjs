// The floor of a Node.js server on this machine: a node:cluster of bare
// node:net servers that answer every request with the baseline's bytes,
// prepared in advance, and parse nothing but the end of each request head
// (CRLF CRLF). No HTTP objects, no per-request allocation beyond what node's
// socket reads make. No real server can be this lean (it skips llhttp's
// checks, headers, routing, logging): it says how far any Node.js design can
// get, so a ceiling above it is out of reach without a native front end.
// Plain JavaScript (no loader), like the baseline.
//
//   BENCH_WORKERS=2 node node-net-floor.mjs   prints {"msg":"listening","port":N}
import cluster from 'node:cluster';
import { runPrimary } from './cluster-primary.mjs';
import net from 'node:net';

const workers = Number(process.env.BENCH_WORKERS ?? 2);

if (cluster.isPrimary) {
  runPrimary(workers);
} else {
  // The baseline's answer to wrk's GET / (one request header: " 1"), node's
  // framing and header order; the Date value renewed once a second.
  let answer;
  const renew = () => {
    answer = Buffer.from(
      'HTTP/1.1 200 OK\r\nX-custom-foo: bar\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n' +
        `Date: ${new Date().toUTCString()}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n 1`,
      'latin1',
    );
  };
  renew();
  setInterval(renew, 1000).unref();

  net
    .createServer({ noDelay: true }, (socket) => {
      // How many bytes of "\r\n\r\n" the previous chunk ended with.
      let matched = 0;
      socket.on('data', (chunk) => {
        let n = 0;
        for (let i = 0; i < chunk.length; i++) {
          const c = chunk[i];
          if (c === (matched & 1 ? 10 : 13)) {
            if (++matched === 4) {
              n++;
              matched = 0;
            }
          } else matched = c === 13 ? 1 : 0;
        }
        if (n === 1) socket.write(answer);
        else if (n > 1) socket.write(Buffer.concat(new Array(n).fill(answer)));
      });
      socket.on('error', () => socket.destroy());
    })
    .listen(0, '127.0.0.1');
}
