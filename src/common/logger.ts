/**
 * The master's log, through winston: readable lines by default, one JSON
 * object per line with `format: 'json'`, nothing with `level: 'silent'`.
 */
import winston from 'winston';

export type LogFormat = 'text' | 'json';
export type Logger = Pick<winston.Logger, 'error' | 'warn' | 'info' | 'debug'>;

export interface LoggerOptions {
  format?: LogFormat;
  level?: 'error' | 'warn' | 'info' | 'debug' | 'silent';
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const format =
    options.format === 'json'
      ? winston.format.combine(winston.format.timestamp(), winston.format.json())
      : winston.format.combine(
          winston.format.timestamp(),
          winston.format.printf(({ timestamp, level, message }) => `${timestamp} liveswap ${level}: ${message}`),
        );
  return winston.createLogger({
    level: level === 'silent' ? 'error' : level,
    silent: level === 'silent',
    format,
    // Everything to stderr: the master's stdout carries the workers' stdout, untouched.
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
  });
}
