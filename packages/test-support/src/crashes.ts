/** Crashing a worker on purpose through a request, and waiting for the service to be whole again. */
import type { Flexilib, LogLine } from './flexilib-process.js';
import { request, type Reply } from './http.js';

/**
 * Send one request that kills its worker; resolves with the worker-exit log
 * line once the replacement listens (so the next crash finds every worker up).
 * Resolves with the reply instead when the request is answered (no crash:
 * a quarantined route, a fixed build).
 */
export async function crashOnce(server: Flexilib, target: string): Promise<{ exit?: LogLine; reply?: Reply }> {
  const from = server.logs.length;
  let reply: Reply;
  try {
    reply = await request(server.port, target, { timeoutMs: 8000 });
  } catch {
    const exit = await server.waitForLog((l) => l.code === 'FLX_WORKER_EXIT', { from, timeoutMs: 5000 });
    await server.waitForLog((l) => l.msg === 'worker listening' && (l.replaces as { pid?: number } | undefined)?.pid === exit.workerPid, { from, timeoutMs: 15_000 });
    return { exit };
  }
  return { reply };
}
