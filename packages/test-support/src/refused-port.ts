import net from 'node:net';
import { once } from 'node:events';

/** A loopback port that refuses connections for as long as it is held. */
export interface RefusedPort {
  port: number;
  close(): Promise<void>;
}

/**
 * A port that refuses connections and that no other server can take while it
 * is held. A port merely bound and released is free again at once, and
 * concurrent test files listening on port 0 can be handed it (an origin that
 * should refuse then answered 404). Here the port is the local end of an open
 * client connection: nothing listens on it, so a connection to it is refused,
 * and the kernel will not bind it for a listener until close().
 */
export async function refusedPort(): Promise<RefusedPort> {
  const anchor = net.createServer((s) => s.on('error', () => {}));
  anchor.listen(0, '127.0.0.1');
  await once(anchor, 'listening');
  const holder = net.connect((anchor.address() as net.AddressInfo).port, '127.0.0.1');
  await once(holder, 'connect');
  holder.on('error', () => {});
  return {
    port: holder.localPort!,
    close: async () => {
      holder.destroy();
      await new Promise<void>((r) => anchor.close(() => r()));
    },
  };
}
