/**
 * Stands in for the executor of a route whose library is quarantined (it
 * crashed workers too often, see the supervisor's crash ledger): answers 503
 * with Retry-After and a one-line reason, never touching the library. Swapped
 * in by rebuilding the router, so quarantine costs the other routes nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RouteSpec } from '@flexilib/contract';
import type { Executor, RequestStats } from '../executor.js';
import type { QuarantineNotice } from '@flexilib/contract';
import { sendError } from '../http/respond.js';

export class QuarantinedExecutor implements Executor {
  readonly kind = 'native' as const;
  private readonly message: string;
  private readonly headers: Record<string, string>;

  constructor(readonly route: RouteSpec, notice: QuarantineNotice) {
    this.message = `route "${route.key}": ${notice.reason}`;
    this.headers = { 'retry-after': String(notice.retryAfterS) };
  }

  handle(_req: IncomingMessage, res: ServerResponse, _stats: RequestStats): void {
    sendError(res, 'FLX_LIB_QUARANTINED', this.message, this.headers);
  }

  close(): void {}
}
