/**
 * Issue 19, worker-provided text: a worker's stderr line becomes its reason,
 * which --status, --watch, the master's text log and the CLI's error line
 * showed raw (ESC sequences, `\r`); and one output line was buffered whole,
 * however long, then carried by every GetStatus and WatchWorkers reply.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeControl } from '../src/common/escape.js';
import { MAX_LINE_CHARS, MAX_SUMMARY_CHARS } from '../src/supervisor/output.js';
import { freePort } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { runCli, spawnCli, startMaster } from './helpers/processes.js';
import { waitFor } from './helpers/wait.js';

/** Anything a terminal acts on: C0 (newline aside, where a line may end), DEL, C1, bidi overrides. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

test('escapeControl: escapes, named where they have a name, never the text around them', () => {
  assert.equal(escapeControl('a\x1b[2Jb\rc\nd\te\x07f\u202eg\u0085h é ✓'), 'a\\e[2Jb\\rc\\nd\\te\\x07f\\u202eg\\x85h é ✓');
});

test('a hostile worker: its escapes reach no terminal and no log line, its 2 MB line is cut, its reason stays short', async (t) => {
  const appPort = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 1, env: { APP_PORT: String(appPort) } });
  t.after(() => master.stop());
  const watch = spawnCli(t, ['--watch', ...master.via]);
  // Watching before the upgrade: a crashed worker is in no later snapshot, only in the transitions a stream saw.
  await waitFor('--watch to print its snapshot', () => /worker\(s\), generation 1/.test(watch.stdout()));

  // The upgrade rolls back (the new worker crashes within the stability window); its error line names the reason.
  const upgrade = await runCli(['-u', fixture('hostile-output.js'), ...master.via]);
  assert.equal(upgrade.code, 1, upgrade.stderr);
  assert.doesNotMatch(upgrade.stderr, RAW_CONTROL, 'the CLI error line');
  assert.match(upgrade.stderr, /\\e\[2J\\e\[Hall good\\rforged\\x07 \\u202eevil/);

  const status = await runCli(['--status', ...master.via]);
  assert.equal(status.code, 0, status.stderr);
  await waitFor('--watch to show the crash', () => /\\e\[2J\\e\[Hall good\\rforged/.test(watch.stdout()));
  const json = JSON.parse((await runCli(['--status', '--json', ...master.via])).stdout);
  const crashed = JSON.stringify(json).length;

  for (const [what, text] of [['--status', status.stdout], ['--watch', watch.stdout()], ['the master log', master.stderr().split('\n').filter((l) => / liveswap /.test(l)).join('\n')]] as const) {
    assert.doesNotMatch(text, RAW_CONTROL, `${what} prints no raw control character`);
  }
  assert.match(master.stderr(), / liveswap warn: upgrade to generation 2 failed: .*\\e\[2J\\e\[Hall good\\rforged/);

  // The 2,000,000-character line was cut as it was read, and the reason is at most MAX_SUMMARY_CHARS of the error line.
  assert.match(master.stderr(), new RegExp(`\\[worker \\d+ g2\\] x{${MAX_LINE_CHARS}}… \\[${2_000_000 - MAX_LINE_CHARS} more characters cut\\]`));
  assert.ok(crashed < 8 * 1024, `GetStatus after the crash is ${crashed} bytes of JSON: ${JSON.stringify(json).slice(0, 1000)}…`);
  const reasons = [...upgrade.stderr.matchAll(/Error: .*/g)].map((m) => m[0]);
  assert.ok(reasons.length > 0 && reasons.every((r) => r.length < MAX_SUMMARY_CHARS + 200), `short reasons: ${reasons.map((r) => r.length)}`);
});
