/**
 * What a spare does while it waits for a release: it pays ahead the
 * first-use costs that Node charges every server at its first listen(), so
 * that a release handed to it is ready sooner. An upgrade waits for its new
 * workers to be ready, so these milliseconds are on the deploy's critical
 * path, and on a machine busy serving traffic they stretch two to three
 * times (issue 18: from `liveswap -u` to the last old-version response).
 *
 * Measured on Node 24 on an idle machine, from the run message to the app's
 * server listening: 20–28 ms before, 9–15 ms with the warm-up. The costs
 * paid here:
 *   - compiling the HTTP/1.1 internals probe that the drain runs at the
 *     first HTTP listen, and the HTTP parser it drives (http-internals.ts;
 *     4–6 ms cold). The probe runs again then: its verdict is the app's;
 *   - the regular expressions of net.isIPv4/isIPv6, compiled on first use by
 *     listen(port, host) (about 7 ms);
 *   - loading node:dns, which listen(port, host) looks the host up with.
 *
 * Nothing here is visible to the app: no socket is opened, no listener or
 * global is left behind, and a worker forked for a release (no spare) runs
 * the same code at its first listen instead.
 */
import dns from 'node:dns';
import net from 'node:net';
import { warmHttpInternals } from './http-internals.js';

export function warmUp(): void {
  warmHttpInternals();
  net.isIPv4('127.0.0.1');
  net.isIPv6('::1');
  // An address literal is answered without a query; this loads the lookup path.
  dns.lookup('127.0.0.1', { all: true }, () => {});
}
