/**
 * A capistrano-style deploy directory: one directory per release, each with
 * an app.js, and `current -> <release>`. flip() moves the link the way deploy
 * tools (and git-sync) do: a new link renamed over the old one, atomically.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fixture, tempDir } from './paths.js';

export interface Releases {
  deploy: string;
  /** <deploy>/current/app.js: the path a master is started on. */
  current: string;
  /** The real app.js of a release. */
  release(name: string): string;
  flip(to: string): void;
}

/**
 * Each release answers its own name (test/fixtures/lib/serve.js on
 * $APP_PORT); a release given source instead runs that source. `current`
 * points at the first.
 */
export function releaseDir(releases: readonly string[], sources: Record<string, string> = {}): Releases {
  const deploy = tempDir();
  for (const release of releases) {
    fs.mkdirSync(path.join(deploy, release));
    const source = sources[release] ?? `require(${JSON.stringify(fixture('lib/serve.js'))})(${JSON.stringify(release)})\n`;
    fs.writeFileSync(path.join(deploy, release, 'app.js'), source);
  }
  fs.writeFileSync(path.join(deploy, 'package.json'), '{"type":"commonjs"}');
  fs.symlinkSync(path.join(deploy, releases[0]!), path.join(deploy, 'current'));
  return {
    deploy,
    current: path.join(deploy, 'current', 'app.js'),
    release: (name) => path.join(deploy, name, 'app.js'),
    flip(to) {
      const next = path.join(deploy, 'current.next');
      fs.symlinkSync(path.join(deploy, to), next);
      fs.renameSync(next, path.join(deploy, 'current'));
    },
  };
}
