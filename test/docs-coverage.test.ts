/**
 * Docs cannot rot silently, part two: what the docs must cover.
 * - Every option `liveswap --help` prints (each of its names: `-s` and
 *   `--start`) has a row of its own in docs/cli.md's tables, with a meaning;
 *   and every option a row names still exists.
 * - Every RPC of every service in proto/, and of each standard service
 *   docs/grpc.md says the master serves (health, reflection: their .proto
 *   files as installed), is named in docs/grpc.md outside code blocks.
 * - The Go client of docs/grpc.md imports the package the generation shown
 *   there produces (no Go toolchain here: checked structurally), and calls
 *   only what the proto defines. The Python client there is run by
 *   python-client.test.ts.
 * Links and anchors: docs-links.test.ts; the README's walk-through:
 * readme-walkthrough.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { codeBlocks, tableRows, withoutCodeBlocks } from './helpers/markdown.js';
import { CLI, ROOT } from './helpers/paths.js';
import { runNode } from './helpers/processes.js';

const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');

// --- CLI options ---------------------------------------------------------

/** The options `--help` prints, each as its names (`['-s', '--start']`). */
export function helpOptions(help: string): string[][] {
  // An option's line starts "  -s, --start" or "      --watch"; its wrapped description lines are indented further.
  return [...help.matchAll(/^ {2}(?: {4})?(-[\w-]+(?:, -[\w-]+)*)(?: {2}|$)/gm)].map((m) => m[1]!.split(', '));
}

/** The options a table row documents: the flags in its first cell (`-s, --start FILE`), and its last cell (the meaning). */
function documentedOptions(markdown: string): { names: string[]; meaning: string }[] {
  return tableRows(markdown)
    .map((cells) => ({ names: [...(cells[0] ?? '').matchAll(/`[^`]*`/g)].flatMap((span) => span[0].match(/(?<![\w-])--?[a-z][\w-]*/gi) ?? []), meaning: cells.at(-1) ?? '' }))
    .filter((row) => row.names.length > 0);
}

/** What docs/cli.md lacks (and names in vain), one line each. */
export function optionGaps(help: string, markdown: string): string[] {
  const rows = documentedOptions(markdown);
  const gaps: string[] = [];
  for (const names of helpOptions(help)) {
    const row = rows.find((r) => names.every((name) => r.names.includes(name)));
    if (!row) gaps.push(`${names.join(', ')}: no row of docs/cli.md names it`);
    else if (row.meaning.split(/\s+/).length < 3) gaps.push(`${names.join(', ')}: its row says nothing about it`);
  }
  const known = new Set(helpOptions(help).flat());
  for (const row of rows) for (const name of row.names) if (!known.has(name)) gaps.push(`${name}: documented, but liveswap --help has no such option`);
  return gaps;
}

test('every option of liveswap --help has a row in docs/cli.md, and every row a real option', async () => {
  const help = await runNode([CLI, '--help']);
  assert.equal(help.code, 0, help.stderr);
  const options = helpOptions(help.stdout);
  assert.ok(options.length > 40, `only ${options.length} options parsed from --help: the pattern is wrong`);
  assert.ok(options.some((names) => names.join() === '-s,--start'), 'short and long names of one option');
  assert.deepEqual(optionGaps(help.stdout, read('docs/cli.md')), []);
});

test('the option check finds a missing option, a short alias left out, and a stale row', () => {
  const help = 'Commands:\n  -s, --start   Run a master\n      --watch   Print worker events\n                --not-an-option in a wrapped line\n';
  const markdown = '| Option | Meaning |\n| --- | --- |\n| `--start FILE` | Run a master in the foreground. |\n| `--gone` | An option that was removed. |\n';
  assert.deepEqual(optionGaps(help, markdown), [
    '-s, --start: no row of docs/cli.md names it',
    '--watch: no row of docs/cli.md names it',
    '--gone: documented, but liveswap --help has no such option',
  ]);
});

// --- RPCs ----------------------------------------------------------------

interface Service {
  /** `liveswap.v1.LiveswapService` */
  fullName: string;
  name: string;
  rpcs: string[];
}

function withoutComments(proto: string): string {
  return proto.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
}

/** The services of a .proto file and their RPCs. */
export function servicesOf(proto: string): Service[] {
  const text = withoutComments(proto);
  const pkg = /^\s*package\s+([\w.]+)\s*;/m.exec(text)?.[1];
  const services: Service[] = [];
  for (const match of text.matchAll(/\bservice\s+(\w+)\s*\{/g)) {
    let depth = 0;
    let end = match.index + match[0].length - 1;
    for (; end < text.length; end++) {
      if (text[end] === '{') depth++;
      else if (text[end] === '}' && --depth === 0) break;
    }
    const body = text.slice(match.index, end);
    const name = match[1]!;
    services.push({ fullName: pkg ? `${pkg}.${name}` : name, name, rpcs: [...body.matchAll(/\brpc\s+(\w+)\s*\(/g)].map((m) => m[1]!) });
  }
  return services;
}

function protoFiles(dir: string): string[] {
  return fs
    .readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.proto'))
    .map((name) => path.join(dir, name));
}

/**
 * The standard services the master adds beside its own (src/control/health.ts,
 * reflection.ts), and where their installed packages keep the .proto.
 */
const require = createRequire(import.meta.url);
const reflectionProtos = path.join(path.dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto', 'grpc', 'reflection');
const STANDARD_SERVICES: Record<string, string> = {
  'grpc.health.v1.Health': (require('grpc-health-check') as { protoPath: string }).protoPath,
  'grpc.reflection.v1.ServerReflection': path.join(reflectionProtos, 'v1', 'reflection.proto'),
  'grpc.reflection.v1alpha.ServerReflection': path.join(reflectionProtos, 'v1alpha', 'reflection.proto'),
};

/** RPCs a Markdown text does not name: a code span outside code blocks that is the RPC, `Service/Rpc` or `pkg.Service/Rpc`. */
export function undocumentedRpcs(services: Service[], markdown: string): string[] {
  const spans = new Set([...withoutCodeBlocks(markdown).matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!));
  return services.flatMap((service) =>
    service.rpcs
      .filter((rpc) => ![rpc, `${service.name}/${rpc}`, `${service.fullName}/${rpc}`].some((name) => spans.has(name)))
      .map((rpc) => `${service.fullName}/${rpc}`),
  );
}

test('every RPC of proto/ and of the standard services the master serves is in docs/grpc.md', () => {
  const grpcMd = read('docs/grpc.md');
  const own = protoFiles('proto').flatMap((file) => servicesOf(read(file)));
  assert.ok(own.some((s) => s.fullName === 'liveswap.v1.LiveswapService' && s.rpcs.includes('GetStatus')), 'the proto parser found the service');

  // The standard services docs/grpc.md names are the ones the master serves, each from a .proto we can read.
  const claimed = new Set(withoutCodeBlocks(grpcMd).match(/\bgrpc\.[a-z][\w.]*\.[A-Z]\w*/g) ?? []);
  assert.deepEqual([...claimed].sort(), Object.keys(STANDARD_SERVICES).sort(), 'the standard services docs/grpc.md names');
  const standard = Object.entries(STANDARD_SERVICES).map(([fullName, file]) => {
    const service = servicesOf(fs.readFileSync(file, 'utf8')).find((s) => s.fullName === fullName);
    assert.ok(service && service.rpcs.length > 0, `${fullName} in ${file}`);
    return service;
  });
  assert.deepEqual(undocumentedRpcs([...own, ...standard], grpcMd), []);
});

test('the RPC check finds an RPC the docs do not name', () => {
  const [service] = servicesOf('syntax = "proto3";\npackage a.v1;\n// rpc Commented(X) returns (Y);\nservice S {\n  rpc One(X) returns (Y);\n  rpc Two(X) returns (stream Y) {}\n}\n');
  assert.deepEqual(service, { fullName: 'a.v1.S', name: 'S', rpcs: ['One', 'Two'] });
  assert.deepEqual(undocumentedRpcs([service!], '`One` does this.\n\n```\nTwo in a code block does not count\n```\n'), ['a.v1.S/Two']);
  assert.deepEqual(undocumentedRpcs([service!], '| `S/One` | `a.v1.S/Two` |'), []);
});

// --- The Go client -------------------------------------------------------

/** The Go package of a proto file: its go_package option, else what buf's managed mode makes of `prefix`. */
export function goPackage(proto: string, file: string, prefix: string | undefined): { importPath: string; name: string } {
  const text = withoutComments(proto);
  const option = /^\s*option\s+go_package\s*=\s*"([^"]+)"\s*;/m.exec(text)?.[1];
  if (option) {
    const [importPath, name] = option.split(';') as [string, string | undefined];
    return { importPath, name: name ?? importPath.split('/').at(-1)! };
  }
  assert.ok(prefix, `${file} has no go_package, and the docs give no go_package_prefix`);
  // buf's managed mode: the prefix, then the file's directory; a versioned package `a.b.v1` is named `bv1`.
  const pkg = /^\s*package\s+([\w.]+)\s*;/m.exec(text)![1]!.split('.');
  return { importPath: `${prefix}/${path.posix.dirname(file)}`, name: pkg.slice(-2).join('') };
}

test('the Go client in docs/grpc.md imports the package its generation makes, and calls what the proto has', () => {
  const grpcMd = read('docs/grpc.md');
  const blocks = codeBlocks(grpcMd);
  const go = blocks.filter((b) => b.lang === 'go');
  assert.equal(go.length, 1, 'one Go client in docs/grpc.md');
  const snippet = go[0]!.text;
  const file = 'liveswap/v1/liveswap.proto';
  const proto = read(path.join('proto', file));
  const prefix = /file_option:\s*go_package_prefix\s*\n\s*value:\s*(\S+)/.exec(blocks.filter((b) => b.lang === 'yaml').map((b) => b.text).join('\n'))?.[1];
  const { importPath, name } = goPackage(proto, file, prefix);

  assert.match(snippet, new RegExp(`^\\s*(${name} )?"${importPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"$`, 'm'), `the snippet imports ${importPath} (package ${name})`);
  // protoc's M flags, where the docs show them, say the same.
  const mFlags = [...grpcMd.matchAll(/--go(?:-grpc)?_opt=M([^=\s]+)=['"]?([^'"\s]+)/g)];
  assert.ok(mFlags.length >= 2, 'the protoc command maps the file for protoc-gen-go and protoc-gen-go-grpc');
  for (const [, mapped, value] of mFlags) assert.deepEqual([mapped, value], [file, `${importPath};${name}`]);

  // Only what the proto defines: the client constructor, request messages and the RPC called.
  const services = servicesOf(proto);
  const messages = new Set([...withoutComments(proto).matchAll(/^message\s+(\w+)/gm)].map((m) => m[1]!));
  const used = [...snippet.matchAll(new RegExp(`\\b${name}\\.(\\w+)`, 'g'))].map((m) => m[1]!);
  assert.ok(used.length >= 2, `the snippet uses package ${name}`);
  for (const identifier of used) {
    assert.ok(messages.has(identifier) || services.some((s) => identifier === `New${s.name}Client`), `${name}.${identifier} is not generated from the proto`);
  }
  const calls = [...snippet.matchAll(new RegExp(`\\.(\\w+)\\(ctx,\\s*&${name}\\.`, 'g'))].map((m) => m[1]!);
  assert.ok(calls.length > 0 && calls.every((rpc) => services.some((s) => s.rpcs.includes(rpc))), `RPCs called: ${calls.join(', ')}`);
  assert.match(snippet, /"authorization",\s*"Bearer "/, 'the token goes in the authorization metadata');
});
