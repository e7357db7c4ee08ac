// `npm run bundle` (part of `npm run build`): the CLI's client commands in one
// file, dist/src/cli/main.bundle.js, built from what tsc wrote. One file loads
// in about half the time of the ~200 files it replaces (bin/liveswap.js
// explains when it is used). start.js (-s, the master) stays outside: the
// master's files find their neighbours (the worker entry, the proto
// descriptors) through their own location.
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
  entryPoints: ['dist/src/cli/main.js'],
  outfile: 'dist/src/cli/main.bundle.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['./start.js'],
  // grpc-js's status constants are CommonJS, and so are parts of yargs' dependencies.
  banner: { js: "import { createRequire as bundleRequire } from 'node:module'; const require = bundleRequire(import.meta.url);" },
  plugins: [lazyStringWidth],
  logLevel: 'warning',
  metafile: true,
});

// The client speaks gRPC over node:http2 (src/client/transport.ts); grpc-js's
// client would double the time a command takes. Only its status constants may come in.
const grpcJs = Object.keys(result.metafile.inputs).filter((file) => file.includes('@grpc/') && !file.endsWith('@grpc/grpc-js/build/src/constants.js'));
if (grpcJs.length > 0) {
  console.error(`bundle-cli: the CLI bundle pulls in grpc-js (${grpcJs.slice(0, 3).join(', ')}…): find the import that brings it`);
  process.exit(1);
}
