/**
 * The README's seed walk-through runs as written. Its shell sessions are the
 * ```console blocks of that section: `$ ` starts a command, the lines after it
 * are what the command prints (stdout, then stderr). In those lines `…` stands
 * for what changes from run to run (a pid, a time, the checkout's path), and
 * a run of indented lines (worker transitions: concurrent workers interleave
 * them) matches in any order. Every command must exit 0; `liveswap -s` runs a
 * master in the foreground, so it runs in the background here until the
 * session's `liveswap -d`, after which it must have exited 0. The ```js
 * blocks under "`examples/NAME`:" must be those files, verbatim.
 *
 * `liveswap` is the CLI of this checkout, run from a copy of examples/ in a
 * temporary directory, with the app on a free port instead of 1337 and the
 * control service on a free port instead of 3000 (output is compared with
 * those put back): seed.test.ts runs the same seed on the fixed ports, and
 * `npm test` runs two test files at once. Neither the CLI nor the seed takes
 * its port from the environment.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { codeBlocks, section } from './helpers/markdown.js';
import { freePort } from './helpers/net.js';
import { CLI, ROOT, tempDir } from './helpers/paths.js';
import { expectGone, GiveUp, isAlive, waitFor, withDeadline } from './helpers/wait.js';

const README_PORTS = { app: 1337, control: 3000 };

export interface Step {
  command: string;
  /** What the doc shows it printing (possibly nothing). */
  output: string[];
}

/** The commands of a ```console block and the output shown after each. */
export function sessionSteps(block: string): Step[] {
  const steps: Step[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('$ ')) steps.push({ command: line.slice(2), output: [] });
    else if (line.trim() !== '') {
      assert.ok(steps.length > 0, `output before any command: ${line}`);
      steps.at(-1)!.output.push(line);
    }
  }
  return steps;
}

function linePattern(line: string): RegExp {
  return new RegExp(`^${line.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.+?')}$`);
}

/**
 * Why `actual` does not match the doc's `expected` lines, or undefined if it
 * does: lines in order, `…` for any text, and each run of indented lines in
 * any order.
 */
export function outputMismatch(expected: string[], actual: string[]): string | undefined {
  let at = 0;
  for (let i = 0; i < expected.length; ) {
    let end = i + 1;
    if (expected[i]!.startsWith('  ')) while (end < expected.length && expected[end]!.startsWith('  ')) end++;
    const patterns = expected.slice(i, end).map(linePattern);
    const lines = actual.slice(at, at + patterns.length);
    const unused = [...lines];
    for (const [n, pattern] of patterns.entries()) {
      const found = unused.findIndex((line) => pattern.test(line));
      if (found === -1) return `no line matches "${expected[i + n]}" among:\n${lines.join('\n')}`;
      unused.splice(found, 1);
    }
    at += patterns.length;
    i = end;
  }
  return at === actual.length ? undefined : `more output than the doc shows:\n${actual.slice(at).join('\n')}`;
}

test('the session format: commands, output, `…` and indented runs in any order', () => {
  const steps = sessionSteps('$ liveswap -k\n  worker 3 (pid …) exited\n  worker 5 (pid …) forked\nkilled 1 worker(s) (pids …)\n$ liveswap -d\n');
  assert.deepEqual(steps, [
    { command: 'liveswap -k', output: ['  worker 3 (pid …) exited', '  worker 5 (pid …) forked', 'killed 1 worker(s) (pids …)'] },
    { command: 'liveswap -d', output: [] },
  ]);
  const output = steps[0]!.output;
  assert.equal(outputMismatch(output, ['  worker 5 (pid 12) forked', '  worker 3 (pid 11) exited', 'killed 1 worker(s) (pids 12)']), undefined);
  assert.match(outputMismatch(output, ['  worker 3 (pid 11) exited', '  worker 6 (pid 12) forked', 'killed 1 worker(s) (pids 12)'])!, /no line matches "  worker 5/);
  assert.match(outputMismatch(output, ['  worker 3 (pid 11) exited', '  worker 5 (pid 12) forked', 'killed 1 worker(s) (pids 12)', 'extra'])!, /more output/);
  assert.match(outputMismatch(['done in … ms'], ['done in  ms'])!, /no line matches/, '`…` stands for something, not nothing');
});

test('README seed walk-through: every session runs as written against a real master', async (t) => {
  const walkThrough = section(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'), 'The seed walk-through');
  const blocks = codeBlocks(walkThrough);

  // The files the README shows are the seed's.
  const shown = blocks.filter((b) => b.lang === 'js').map((b) => ({ file: /^`(examples\/[\w.-]+)`:$/.exec(b.before)?.[1], text: b.text }));
  assert.ok(shown.length >= 2 && shown.every((s) => s.file), 'each js block follows "`examples/NAME`:"');
  for (const { file, text } of shown) assert.equal(text, fs.readFileSync(path.join(ROOT, file!), 'utf8'), `${file} as the README shows it`);

  const steps = blocks.filter((b) => b.lang === 'console').flatMap((b) => sessionSteps(b.text));
  assert.ok(steps.length >= 5 && steps.some((s) => s.output.length > 0), `${steps.length} commands found: the session pattern is wrong`);

  const ports = { app: await freePort(), control: await freePort() };
  const examples = path.join(tempDir(), 'examples');
  fs.cpSync(path.join(ROOT, 'examples'), examples, { recursive: true });
  for (const name of fs.readdirSync(examples).filter((n) => n.endsWith('.js'))) {
    const file = path.join(examples, name);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replaceAll(String(README_PORTS.app), String(ports.app)));
  }
  const asInReadme = (text: string) =>
    text.replaceAll(`127.0.0.1:${ports.app}`, `127.0.0.1:${README_PORTS.app}`).replaceAll(`127.0.0.1:${ports.control}`, `127.0.0.1:${README_PORTS.control}`);

  /** `command` in sh, `liveswap` being a function that execs this checkout's CLI on the test's control port. */
  const run = (command: string) => {
    const script = `node_bin=$1 cli=$2 port=$3\nliveswap() { exec "$node_bin" "$cli" -p "$port" "$@"; }\n${command}\n`;
    const child = spawn('/bin/sh', ['-c', script, 'sh', process.execPath, CLI, String(ports.control)], { cwd: examples, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    child.stdout.on('data', (chunk) => (out.stdout += chunk));
    child.stderr.on('data', (chunk) => (out.stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    return { child, out, exited };
  };

  let master: ReturnType<typeof run> | undefined;
  const workerPids = () => [...new Set([...(master?.out.stderr ?? '').matchAll(/worker \d+ \(pid (\d+),/g)].map((m) => Number(m[1])))];
  t.after(async () => {
    const pids = [...(master ? [master.child.pid!] : []), ...workerPids()];
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    await expectGone(pids);
  });

  for (const { command, output } of steps) {
    if (/^liveswap (-s|--start)\b/.test(command)) {
      assert.equal(master, undefined, 'one foreground master');
      const started = run(command);
      master = started;
      let gone = false;
      void started.exited.then(() => (gone = true));
      await waitFor(
        `${command} to be up`,
        () => {
          if (gone) throw new GiveUp(`${command} exited early:\n${started.out.stderr}`);
          return /master pid \d+ up/.test(started.out.stderr);
        },
        { timeoutMs: 20_000 },
      );
      continue;
    }
    const { out, exited } = run(command);
    const code = await withDeadline(command, exited, 60_000);
    assert.equal(code, 0, `${command} exited ${code}:\n${out.stdout}${out.stderr}`);
    if (output.length === 0) continue;
    const printed = asInReadme(out.stdout + out.stderr).split('\n');
    if (printed.at(-1) === '') printed.pop();
    const mismatch = outputMismatch(output, printed);
    assert.equal(mismatch, undefined, `${command}: the README shows\n${output.join('\n')}\nbut it printed\n${printed.join('\n')}\n(${mismatch})`);
  }

  assert.ok(master, 'the walk-through starts a master');
  assert.equal(await withDeadline('the foreground master to exit after the walk-through', master.exited, 15_000), 0, master.out.stderr);
  await expectGone([master.child.pid!, ...workerPids()]);
});
