/**
 * Compiled code kept on disk, so the next command skips compiling the CLI
 * (on this 2-core VM, about 20 ms of a 140 ms `liveswap --status`).
 *
 * - Node >= 22.1: its own compile cache (module.enableCompileCache), for
 *   whatever loads after it is on.
 * - Node 20, which has none: V8's code cache for the one bundle file, made
 *   after the command ran (so it holds the functions the command compiled on
 *   the way), and checked by V8 against the source and the Node build.
 *
 * Either lives in the liveswap state directory (token-file.ts: private to
 * the user, mode 0700, refused if another user owns it or may write to it),
 * under compile-cache/: Node's default is under os.tmpdir(), where on a shared
 * machine another user could create it first and put entries there that Node
 * would load as compiled code into our process. NODE_COMPILE_CACHE (a
 * directory the user chose) and NODE_DISABLE_COMPILE_CACHE keep their
 * meaning. Anything in the way (no home, a read-only disk): no cache, and the
 * command runs as it would without.
 */
import fs from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import { ensureStateDir, stateDir } from '../common/token-file.js';

type EnableCompileCache = (directory?: string) => unknown;

/** The private cache directory, made if need be; undefined when caching is off or impossible. */
function cacheDirectory(): string | undefined {
  if (process.env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  try {
    const directory = path.join(stateDir(), 'compile-cache');
    ensureStateDir(path.dirname(directory));
    ensureStateDir(directory);
    return directory;
  } catch {
    return undefined; // No private directory for it: no cache.
  }
}

export function enableCompileCache(): void {
  const enable = (module as { enableCompileCache?: EnableCompileCache }).enableCompileCache;
  if (!enable || process.env.NODE_COMPILE_CACHE) return;
  const directory = cacheDirectory();
  if (directory) enable(directory);
}

export interface LoadedBundle {
  exports: unknown;
  /** Writes the code cache if there is none yet (or V8 refused it): call once the command has run. */
  save(): void;
}

/**
 * Loads a CommonJS bundle: through require() with Node's compile cache where
 * Node has one, else compiled here with V8's code cache.
 */
export function loadBundle(file: string): LoadedBundle {
  const hasNodeCache = typeof (module as { enableCompileCache?: EnableCompileCache }).enableCompileCache === 'function';
  const directory = hasNodeCache ? undefined : cacheDirectory();
  if (hasNodeCache) enableCompileCache();
  if (!directory) return { exports: module.createRequire(file)(file), save: () => {} };

  const source = fs.readFileSync(file, 'utf8');
  const stat = fs.statSync(file);
  // One entry per bundle build and Node build; V8 checks the rest.
  const cacheFile = path.join(directory, `bundle-${process.version}-${process.arch}-${stat.size}-${Math.trunc(stat.mtimeMs)}.v8`);
  let cachedData: Buffer | undefined;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(module.wrap(source), {
    filename: file,
    ...(cachedData && { cachedData }),
  });
  const bundleModule = { exports: {} as unknown };
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  wrapper(bundleModule.exports, module.createRequire(file), bundleModule, file, path.dirname(file));
  return {
    exports: bundleModule.exports,
    save() {
      if (cachedData && !script.cachedDataRejected) return;
      try {
        const temporary = `${cacheFile}.${process.pid}`;
        fs.writeFileSync(temporary, script.createCachedData(), { mode: 0o600 });
        fs.renameSync(temporary, cacheFile);
        // Entries of earlier builds are never read again.
        for (const entry of fs.readdirSync(directory)) {
          if (/^bundle-.*\.v8$/.test(entry) && entry !== path.basename(cacheFile)) fs.rmSync(path.join(directory, entry), { force: true });
        }
      } catch {
        // A cache is an optimisation: a command never fails for want of one.
      }
    },
  };
}
