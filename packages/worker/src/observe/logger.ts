/**
 * pino loggers over the shared-stdout LineWriter. LOG_LEVEL sets the level;
 * LOG_FORMAT=text (or a terminal on stdout) prints readable lines instead of JSON.
 */
import pino, { type Logger } from 'pino';
import { LineWriter } from './line-writer.js';

export type LogFormat = 'json' | 'text';

export interface LogOptions {
  level: string;
  format: LogFormat;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

let writer: LineWriter | undefined;
export function stdoutWriter(): LineWriter {
  return (writer ??= new LineWriter(1));
}

function textLine(obj: Record<string, unknown>): string {
  const { level, time, msg, pid, hostname, ...rest } = obj;
  void hostname;
  const label = pino.levels.labels[level as number] ?? String(level);
  const extra = Object.keys(rest).length ? ' ' + Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ') : '';
  return `${new Date(time as number).toISOString()} ${label.toUpperCase()} [${pid}] ${msg ?? ''}${extra}\n`;
}

export function createLogger(opts: LogOptions, bindings: Record<string, unknown>): Logger {
  const out = stdoutWriter();
  const dest =
    opts.format === 'text'
      ? { write: (s: string) => out.write(textLine(JSON.parse(s) as Record<string, unknown>)) }
      : out;
  return pino({ level: opts.level, base: { pid: process.pid, ...bindings } }, dest);
}
