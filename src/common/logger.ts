/**
 * The master's log, through winston: readable lines by default, one JSON
 * object per line with `format: 'json'`, nothing with `level: 'silent'`.
 * A text entry is always one line: control characters in a message (a
 * worker's stderr reaches the log as its exit reason) are escaped, so no
 * worker can forge a log line or drive the terminal (escape.ts).
 */
import winston from 'winston';
import { escapeControl } from './escape.js';

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
          winston.format.printf(({ timestamp, level, message }) => `${timestamp} liveswap ${level}: ${escapeControl(String(message))}`),
        );
  return winston.createLogger({
    level: level === 'silent' ? 'error' : level,
    silent: level === 'silent',
    format,
    // Everything to stderr: the master's stdout carries the workers' stdout, untouched.
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
  });
}
