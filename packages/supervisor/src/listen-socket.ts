/**
 * The traffic port, held by the supervisor for its whole life.
 *
 * The supervisor binds the socket once (port 0 picks the port here, once) and
 * hands it to every worker that is to serve (the `listen` message carries it);
 * each worker listens on it and accepts its own connections. The supervisor
 * never listens on it itself — it does not accept — but its descriptor keeps
 * the socket, listening state and queue of not yet accepted connections alive
 * while no worker is: when every worker dies at once, clients wait in the
 * kernel's queue for the replacement instead of being refused, and the port
 * never changes. (node:cluster's shared handle closes with its last worker.)
 *
 * Node has no public call that binds without listening (a listening server in
 * the supervisor would accept connections itself): net._createServerHandle is
 * the one node:cluster uses for the same job.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { FlexiError } from '@flexilib/contract';

/** node's TCP handle (tcp_wrap): what a worker's server.listen() takes. */
export interface TcpHandle {
  getsockname(out: { address?: string; port?: number }): number;
  close(): void;
}

type CreateServerHandle = (address: string, port: number, addressType: number, fd?: number, flags?: number) => TcpHandle | number;

export class ListenSocket {
  private closed = false;

  private constructor(readonly handle: TcpHandle, readonly address: string, readonly port: number) {}

  /** Bind host:port (a name is resolved first); throws FLX_LISTEN naming the address and why. */
  static async bind(host: string, port: number): Promise<ListenSocket> {
    let address = host;
    let family = net.isIP(host);
    if (family === 0) {
      try {
        ({ address, family } = await dns.lookup(host));
      } catch (err) {
        throw new FlexiError('FLX_LISTEN', `cannot listen on ${host}:${port} (--host): ${(err as Error).message}`);
      }
    }
    const create = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle;
    const h = create(address, port, family, undefined, 0);
    if (typeof h === 'number') throw new FlexiError('FLX_LISTEN', `cannot listen on ${host}:${port}: ${getSystemErrorName(h)}`);
    const out: { port?: number } = {};
    h.getsockname(out);
    // libuv reports EADDRINUSE at listen(), not bind(): the socket then stays unbound (port 0).
    if (!out.port || (port !== 0 && out.port !== port)) {
      h.close();
      throw new FlexiError('FLX_LISTEN', `cannot listen on ${host}:${port}: the port is already in use (--port)`);
    }
    return new ListenSocket(h, address, out.port);
  }

  /** Stop taking connections (graceful stop): the workers close their copies as they stop. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handle.close();
  }
}
