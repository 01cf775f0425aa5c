/**
 * A fast-lane request kept past the call that received it. The lane reads
 * every request into one reused object (lane-request.ts), valid only while an
 * executor's laneHandle runs; an executor that cannot copy the request into
 * its call memory at once (all threads or instances busy: the call queues)
 * keeps this copy instead. Queueing is the rare case, so the common one
 * allocates nothing.
 */
import type { RequestLike } from '../executor.js';

export function holdRequest(req: RequestLike): RequestLike {
  return {
    method: req.method,
    url: req.url,
    rawHeaders: req.rawHeaders.slice(),
    httpVersionMajor: req.httpVersionMajor,
    httpVersionMinor: req.httpVersionMinor,
    // The connection's own socket (the lane's object only points at it).
    socket: req.socket,
    // Copied too: the lane's body is a view of its shared read buffer (socket-reads.ts).
    body: req.body === undefined ? undefined : Buffer.from(req.body),
  };
}
