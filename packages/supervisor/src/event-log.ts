/**
 * Supervisor events as structured log events: each line carries `event` (the
 * name in events.ts) and the event's fields, so a log pipeline can match on
 * them without parsing messages.
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { SupervisorEvents } from './events.js';

export function logSupervisorEvents(supervisor: EventEmitter<SupervisorEvents>, log: Logger): void {
  supervisor.on('worker-start', (e) =>
    log.info({ event: 'worker-start', workerId: e.id, workerPid: e.pid, restart: e.restart }, e.restart ? 'worker started (replacement)' : 'worker started'),
  );
  supervisor.on('worker-listening', (e) => log.info({ event: 'worker-listening', workerId: e.id, workerPid: e.pid, port: e.port }, 'worker listening'));
  supervisor.on('worker-exit', (e) => {
    const fields = { event: 'worker-exit', workerId: e.id, workerPid: e.pid, code: e.code, signal: e.signal, reason: e.reason, route: e.route, library: e.library };
    if (e.reason === 'crash') {
      const how = e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
      const where = e.route ? ` while route "${e.route}" (${e.library ?? 'unknown library'}) was running` : '';
      log.error(fields, `worker ${how}${where}; replacing it`);
    } else {
      log.info(fields, 'worker exited');
    }
  });
  supervisor.on('reloading', (e) => log.info({ event: 'reloading', config: e.file, generation: e.generation }, 'reloading config'));
  supervisor.on('reloaded', (e) => log.info({ event: 'reloaded', config: e.file, generation: e.generation }, 'config reloaded'));
  supervisor.on('reload-failed', (e) =>
    log.error({ event: 'reload-failed', config: e.file, generation: e.generation, err: e.error }, 'config reload failed; the previous config keeps serving'),
  );
  supervisor.on('library-reloaded', (e) =>
    e.ok
      ? log.info({ event: 'library-reloaded', library: e.file, ok: true }, 'library reloaded')
      : log.error({ event: 'library-reloaded', library: e.file, ok: false, err: e.error }, 'library reload failed; the previous version keeps serving'),
  );
  supervisor.on('quarantine', (e) =>
    log.error({ event: 'quarantine', library: e.library, route: e.route, crashes: e.crashes, until: e.until }, 'library quarantined after repeated crashes'),
  );
  supervisor.on('quarantine-lifted', (e) => log.info({ event: 'quarantine-lifted', library: e.library }, 'library quarantine lifted'));
  supervisor.on('stopping', (e) => log.info({ event: 'stopping', signal: e.signal }, 'stopping: letting requests in flight finish'));
}
