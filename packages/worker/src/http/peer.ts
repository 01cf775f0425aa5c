/**
 * A connection's remote address and port, read once per connection.
 *
 * `socket.remoteAddress` and `remotePort` each go through net.Socket's
 * `_getpeername()`, whose property reads on a socket (an object node:http
 * has added many properties to) are megamorphic loads: about 1,000
 * instructions a request for the pair, measured with callgrind. A WeakMap
 * lookup is a fraction of that, and the entry goes with the socket.
 */

export interface Peer {
  address: string;
  port: number;
  /** "address:port", as the access log prints it. */
  text: string;
  /** The access log's bytes for this connection (observe/access-log.ts), kept as long as the socket is. */
  logRun: unknown;
}

type PeerSocket = { remoteAddress?: string; remotePort?: number };

const peers = new WeakMap<PeerSocket, Peer>();

export function peerOf(socket: PeerSocket): Peer {
  let p = peers.get(socket);
  if (p === undefined) {
    const address = socket.remoteAddress;
    const port = socket.remotePort;
    p = { address: address ?? '', port: port ?? 0, text: `${address}:${port}`, logRun: undefined };
    // A socket already closed reports no address: don't remember that.
    if (address !== undefined) peers.set(socket, p);
  }
  return p;
}
