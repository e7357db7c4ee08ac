/**
 * The layout is the architecture (CONTRIBUTING.md, "Layout"): what may import what, read
 * from the sources.
 * What a running client loads is lean-client.test.ts's: this file checks the
 * sources. A client never loads the master: src/run.ts, and through it
 * src/supervisor and src/control, are imported only by `-s` and `liveswap()`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers/paths.js';

const SRC = path.join(ROOT, 'src');

/** Every .ts file under src (generated code included: it is imported like the rest). */
function sources(dir = SRC): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

/**
 * The files a source imports statically (`import … from`, `export … from`);
 * `import()` is not followed. With `runtimeOnly`, `import type` and
 * `export type` are left out: TypeScript erases them.
 */
function staticImports(file: string, { runtimeOnly = false } = {}): string[] {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(/^(?:import|export)\s(type\s)?[^;]*?\sfrom\s+'(\.{1,2}\/[^']+)'/gms)]
    .filter((match) => !(runtimeOnly && match[1]))
    .map((match) => path.resolve(path.dirname(file), match[2]!).replace(/\.js$/, '.ts'));
}

/** Where a file sits: its folder under src, or its name for files at the top of src. */
function part(file: string): string {
  const relative = path.relative(SRC, file).split(path.sep);
  return relative.length > 1 ? relative[0]! : relative[0]!.replace(/\.ts$/, '');
}

/** Every file loaded when `entry` is, up to its dynamic imports. */
function runtimeClosure(entry: string): Set<string> {
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    queue.push(...staticImports(file, { runtimeOnly: true }));
  }
  return seen;
}

/** For each part, the parts it may import statically. */
const ALLOWED: Record<string, readonly string[]> = {
  gen: ['gen'],
  // The contract's types (ready-mode.ts maps the proto's enum) are the one thing common imports.
  common: ['common', 'gen'],
  worker: ['worker', 'common'],
  client: ['client', 'common', 'gen'],
  // Fleet rollouts (many masters) are a client's work.
  fleet: ['fleet', 'client', 'common', 'gen'],
  supervisor: ['supervisor', 'common'],
  control: ['control', 'supervisor', 'common', 'gen'],
  run: ['control', 'supervisor', 'common'],
  options: ['common', 'run'],
  // cli/start.ts (-s) imports run.ts; main.ts loads start.ts with import() only (next test).
  cli: ['cli', 'client', 'common', 'gen', 'options', 'run', 'fleet'],
  // index.ts names the supervisor's result types (erased); run.ts comes by import().
  index: ['client', 'common', 'gen', 'options', 'supervisor', 'fleet'],
};

test('each part of src imports only the parts below it', () => {
  const breaches: string[] = [];
  for (const file of sources()) {
    const from = part(file);
    const allowed = ALLOWED[from];
    assert.ok(allowed, `src/${path.relative(SRC, file)} is in a part the layout does not know (${from}); add it to ALLOWED`);
    for (const imported of staticImports(file)) {
      if (!allowed.includes(part(imported))) breaches.push(`${path.relative(SRC, file)} → ${path.relative(SRC, imported)}`);
    }
  }
  assert.deepEqual(breaches, []);
});

test('the CLI and the API reach the master only through a dynamic import of run.ts', () => {
  for (const entry of ['cli/main.ts', 'index.ts']) {
    const reached = [...runtimeClosure(path.join(SRC, entry))].map((file) => path.relative(SRC, file));
    const master = reached.filter((file) => /^(supervisor|control)\//.test(file) || file === 'run.ts');
    assert.deepEqual(master, [], `${entry} statically loads ${master.join(', ')}`);
  }
});
