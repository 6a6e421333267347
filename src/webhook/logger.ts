// pino JSON logs: one object per line, ISO timestamps and level names (not numbers) so log
// pipelines can filter without a pino-specific mapping.

import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level?: string;
  /** Defaults to stdout; tests pass a stream to capture lines. */
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const options = {
    name: 'wpgw',
    level: opts.level ?? 'info',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
