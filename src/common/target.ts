/**
 * Turns a target path from a request into the absolute file a worker will run,
 * or an INVALID_ARGUMENT that says exactly what is wrong with it.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { invalidArgument } from './errors.js';

const resolveFrom = createRequire(import.meta.url);

export function resolveTarget(input: string): string {
  if (!input) throw invalidArgument('target is required: the absolute path of the module to run');
  if (!path.isAbsolute(input)) {
    throw invalidArgument(
      `target must be an absolute path, got "${input}" (the CLI and API resolve relative paths for you)`,
    );
  }
  let stat: fs.Stats;
  try {
    stat = fs.statSync(input);
  } catch (error) {
    throw describeFsError(input, error);
  }
  let file = input;
  if (stat.isDirectory()) {
    try {
      // The same lookup as `node <dir>`: package.json "main", then index.js.
      file = resolveFrom.resolve(input);
    } catch {
      throw invalidArgument(`target ${input} is a directory with no entry point (no package.json "main" and no index.js)`);
    }
  } else if (!stat.isFile()) {
    throw invalidArgument(`target ${input} is not a regular file`);
  }
  try {
    fs.accessSync(file, fs.constants.R_OK);
    // Pin the real file: with a `current -> releases/N` symlink, a later
    // respawn, Kill or rollback of this generation must run this release,
    // not whatever the link points to by then.
    return fs.realpathSync(file);
  } catch (error) {
    throw describeFsError(file, error);
  }
}

function describeFsError(file: string, error: unknown) {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return invalidArgument(`target ${file} does not exist`);
    case 'EACCES':
    case 'EPERM':
      return invalidArgument(`target ${file} is not readable (permission denied)`);
    case 'ENOTDIR':
      return invalidArgument(`target ${file} does not exist (a parent is not a directory)`);
    default:
      return invalidArgument(`target ${file} cannot be read: ${(error as Error).message}`);
  }
}
