/**
 * Supervisor events as structured log records: each carries `event` (its name
 * in events.ts) and the event's fields, so a log pipeline can match on them
 * without parsing messages. Most events are logged where they happen, with
 * the context only that code has (supervisor.ts, config-reload.ts,
 * library-reloader.ts, shutdown.ts); this file logs the rest, so every event
 * makes exactly one record.
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { SupervisorEvents } from './events.js';

export function logSupervisorEvents(supervisor: EventEmitter<SupervisorEvents>, log: Logger): void {
  supervisor.on('worker-start', (e) =>
    log.info(
      { event: 'worker-start', workerId: e.id, workerPid: e.pid, standby: e.standby, restart: e.replaces !== undefined, replaces: e.replaces },
      e.standby ? 'worker started (spare)' : e.replaces ? 'worker started (replacement)' : 'worker started',
    ),
  );
}
