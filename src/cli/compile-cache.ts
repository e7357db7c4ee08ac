/**
 * Node >= 22.1 can keep the code it compiled on disk, so the next command
 * skips compiling (module.enableCompileCache; Node 20 has no such cache).
 *
 * Its default directory is under os.tmpdir(): on a machine whose /tmp is
 * shared, another user could create it first and put entries there that
 * Node would load as compiled code into our process. So the cache goes in
 * the liveswap state directory (token-file.ts: private to the user, mode
 * 0700, refused if another user owns it or may write to it), under
 * compile-cache/. NODE_COMPILE_CACHE (a directory the user chose) and
 * NODE_DISABLE_COMPILE_CACHE keep their meaning. Anything in the way (no
 * home, a read-only disk): no cache, and the command runs as it would without.
 */
import module from 'node:module';
import path from 'node:path';
import { ensureStateDir, stateDir } from '../common/token-file.js';

type EnableCompileCache = (directory?: string) => unknown;

export function enableCompileCache(): void {
  const enable = (module as { enableCompileCache?: EnableCompileCache }).enableCompileCache;
  if (!enable || process.env.NODE_DISABLE_COMPILE_CACHE || process.env.NODE_COMPILE_CACHE) return;
  try {
    const directory = path.join(stateDir(), 'compile-cache');
    ensureStateDir(path.dirname(directory));
    ensureStateDir(directory);
    enable(directory);
  } catch {
    // No private directory for it: no cache.
  }
}
