import http from 'node:http';
import koffi from 'koffi';
const mode = process.argv[2];
const lib = koffi.load('/tmp/b/libempty.so');
const noop = lib.func('int noop(void *a, void *b)');
const p = koffi.alloc('uint8', 64);
const body = ' 3';
http.createServer((req, res) => {
  if (mode === 'koffi') noop(p, p);
  res.writeHead(200, { 'X-custom-foo': 'bar', 'content-type': 'text/plain', 'content-length': 2 });
  res.end(body);
}).listen(Number(process.argv[3]));
