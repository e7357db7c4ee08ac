// `npm run prepare`, which npm runs in three places:
// - after `npm install` or `npm ci` in this repository;
// - in a clone of it, when a project depends on liveswap from git: npm installs
//   the clone with its devDependencies, runs prepare, then packs the clone as
//   `files` lists it, without prepack. Without a build here it would pack no dist/;
// - in `npm pack` and `npm publish` right after prepack, which has just built.
// It builds in the first two (`npm run build`), and not in the third. Without
// the devDependencies (`npm ci --omit=dev` in a checkout) there is nothing to
// build with: it says so and leaves the install to finish.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

if (process.env.npm_command === 'pack' || process.env.npm_command === 'publish') process.exit(0);

try {
  createRequire(import.meta.url).resolve('typescript/package.json');
} catch {
  console.error('prepare: no devDependencies here (npm ci --omit=dev?): not building; `npm run build` needs them');
  process.exit(0);
}

// The npm that runs this script (npm_execpath), run by this node; `npm` from PATH where npm set none.
const npm = process.env.npm_execpath;
const build = npm
  ? spawnSync(process.execPath, [npm, 'run', 'build'], { stdio: 'inherit' })
  : spawnSync('npm', ['run', 'build'], { stdio: 'inherit', shell: process.platform === 'win32' });
if (build.error) throw build.error;
process.exit(build.status ?? 1);
