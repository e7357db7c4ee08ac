/**
 * A Node.js binary given for a release (`-u FILE --node PATH`) or for the
 * master's successor (`--upgrade-master --node PATH`): checked before
 * anything is forked, by asking it its version. A path that is not an
 * executable Node.js of a supported line is INVALID_ARGUMENT, and nothing
 * changes.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { invalidArgument } from '../common/errors.js';

/** The oldest Node.js line liveswap runs on (package.json engines). */
const MIN_MAJOR = 20;
/** `node --version` answers in tens of milliseconds; a binary that hangs is not one we want. */
const PROBE_TIMEOUT_MS = 10_000;

export interface NodeBinary {
  /** The absolute path as given. */
  execPath: string;
  /** What it says with --version ("v22.12.0"). */
  version: string;
}

/** This process's own binary. */
export const OWN_NODE: NodeBinary = { execPath: process.execPath, version: process.version };

export async function probeNode(given: string, what = 'node'): Promise<NodeBinary> {
  if (!path.isAbsolute(given)) throw invalidArgument(`${what} must be an absolute path, got ${JSON.stringify(given)}`);
  try {
    fs.accessSync(given, fs.constants.X_OK);
    if (!fs.statSync(given).isFile()) throw new Error('not a file');
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw invalidArgument(`${what} ${given} is not an executable file (${why})`);
  }
  const version = await new Promise<string>((resolve, reject) => {
    execFile(given, ['--version'], { timeout: PROBE_TIMEOUT_MS, encoding: 'utf8' }, (error, stdout) => {
      if (error) {
        const how = error.killed ? `timed out after ${PROBE_TIMEOUT_MS} ms` : `exited with ${error.code ?? error.signal ?? error.message}`;
        reject(invalidArgument(`${what} ${given} is not a Node.js binary: \`${path.basename(given)} --version\` ${how}`));
      } else resolve(stdout.trim());
    });
  });
  const major = /^v(\d+)\.\d+\.\d+/.exec(version)?.[1];
  if (!major) throw invalidArgument(`${what} ${given} is not a Node.js binary: --version printed ${JSON.stringify(version.slice(0, 60))}`);
  if (Number(major) < MIN_MAJOR) throw invalidArgument(`${what} ${given} is Node.js ${version}; liveswap needs ${MIN_MAJOR} or later`);
  return { execPath: given, version };
}
