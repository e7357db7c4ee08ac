// `npm run bundle` (part of `npm run build`): the CLI's client commands in one
// CommonJS file, dist/src/cli/main.bundle.cjs, built from what tsc wrote, and
// the compile-cache switch bin/liveswap.cjs runs first, compile-cache.cjs.
// Why: one file loads in about half the time of the ~200 it replaces, and a
// CommonJS entry with a CommonJS bundle skips the ES module loader, its
// facades of Node's built-ins and an async file read (about 40 ms of CPU a
// command on a 2-core VM, where `node -e 0` takes 70). Minified: a third of
// the bytes to read and compile (error messages are ours, not stack traces).
// start.js (-s, the master) stays outside: the master's files find their
// neighbours (the worker entry, the proto descriptors) through their own location.
import path from 'node:path';
import * as esbuild from 'esbuild';

/**
 * string-width measures text for yargs' help screen only, but creates an
 * Intl.Segmenter when it is loaded (about 20 ms of CPU, a tenth of a client
 * command). Each import of it is given a stand-in that loads the real one
 * (the version that importer would get) on the first call.
 */
const lazyStringWidth = {
  name: 'lazy-string-width',
  setup(build) {
    build.onResolve({ filter: /^string-width$/ }, async ({ importer, resolveDir, kind, pluginData }) => {
      // The stand-in's own require, and the lookup just below: the real module.
      if (kind === 'require-call' || pluginData?.real) return undefined;
      const real = await build.resolve('string-width', { importer, resolveDir, kind, pluginData: { real: true } });
      return { path: real.path, namespace: 'lazy-string-width' };
    });
    build.onLoad({ filter: /.*/, namespace: 'lazy-string-width' }, ({ path: real }) => ({
      contents: `let stringWidth;
export default (...args) => (stringWidth ??= require('string-width').default)(...args);`,
      resolveDir: path.dirname(real),
      loader: 'js',
    }));
  },
};

const result = await esbuild.build({
  entryPoints: { 'main.bundle': 'dist/src/cli/main.js', 'compile-cache': 'dist/src/cli/compile-cache.js' },
  outdir: 'dist/src/cli',
  outExtension: { '.js': '.cjs' },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  minify: true,
  target: 'node20',
  external: ['./start.js'],
  // What tsc wrote is ES modules: their import.meta.url is the bundle's own URL.
  define: { 'import.meta.url': 'bundleUrl' },
  banner: { js: "var bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [lazyStringWidth],
  logLevel: 'warning',
  metafile: true,
});

// The client speaks gRPC and HTTP/2 itself (src/client/transport.ts, src/client/http2/); grpc-js's
// client would double the time a command takes. Only its status constants may come in.
const grpcJs = Object.keys(result.metafile.inputs).filter((file) => file.includes('@grpc/') && !file.endsWith('@grpc/grpc-js/build/src/constants.js'));
if (grpcJs.length > 0) {
  console.error(`bundle-cli: the CLI bundle pulls in grpc-js (${grpcJs.slice(0, 3).join(', ')}…): find the import that brings it`);
  process.exit(1);
}
