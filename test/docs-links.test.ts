/**
 * Docs cannot rot silently: every relative link in the user-facing Markdown
 * (README.md, docs/, bench/README.md, CONTRIBUTING.md, deploy/) names a file
 * that exists, and every `#anchor` names a heading of that file, slugged the
 * way GitHub slugs headings. External links (http:, https:, mailto:) are not
 * followed: tests stay on loopback.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { withoutCodeBlocks } from './helpers/markdown.js';
import { ROOT } from './helpers/paths.js';

function markdownFiles(): string[] {
  const top = ['README.md', 'CONTRIBUTING.md', 'bench/README.md'];
  const inDir = (dir: string): string[] =>
    fs.existsSync(path.join(ROOT, dir))
      ? fs.readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
          .filter((name) => name.endsWith('.md'))
          .map((name) => path.join(dir, name))
      : [];
  return [...top, ...inDir('docs'), ...inDir('deploy')];
}

/** Text outside fenced code blocks and inline code, where links are links. */
function prose(markdown: string): string {
  return withoutCodeBlocks(markdown).replace(/`[^`\n]*`/g, '');
}

/** GitHub's heading slug: lower case, punctuation but `-` and `_` dropped, spaces to `-`. */
export function slug(heading: string): string {
  return heading
    .replace(/`/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** The anchors a file offers: its headings (numbered -1, -2… when repeated, as GitHub does). */
function anchors(file: string): Set<string> {
  const text = withoutCodeBlocks(fs.readFileSync(file, 'utf8'));
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const match of text.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = slug(match[1]!);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    out.add(count === 0 ? base : `${base}-${count}`);
  }
  for (const match of text.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) out.add(match[1]!);
  return out;
}

/** Every `[text](target)` and `[label]: target` link of a Markdown file. */
function links(markdown: string): string[] {
  const text = prose(markdown);
  const inline = [...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
  const reference = [...text.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1]!);
  const images = [...text.matchAll(/<img\s[^>]*src="([^"]+)"/g)].map((m) => m[1]!);
  return [...inline, ...reference, ...images];
}

function broken(file: string): string[] {
  const problems: string[] = [];
  for (const link of links(fs.readFileSync(path.join(ROOT, file), 'utf8'))) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // http:, https:, mailto:
    const [target = '', anchor] = link.split('#', 2);
    const resolved = target === '' ? path.join(ROOT, file) : path.resolve(path.dirname(path.join(ROOT, file)), decodeURIComponent(target));
    if (!resolved.startsWith(ROOT + path.sep)) {
      problems.push(`${file}: ${link} leaves the repository`);
      continue;
    }
    if (!fs.existsSync(resolved)) {
      problems.push(`${file}: ${link} names no file`);
      continue;
    }
    if (anchor !== undefined && resolved.endsWith('.md') && !anchors(resolved).has(anchor)) {
      problems.push(`${file}: ${link} names no heading of ${path.relative(ROOT, resolved)}`);
    }
  }
  return problems;
}

test('GitHub slugs: punctuation dropped, spaces become dashes', () => {
  assert.equal(slug('Setting it up: token files, non-loopback addresses, health, TLS'), 'setting-it-up-token-files-non-loopback-addresses-health-tls');
  assert.equal(slug('`-u` and `--pre-upgrade`'), '-u-and---pre-upgrade');
  assert.equal(slug('The worker contract, in short'), 'the-worker-contract-in-short');
});

test('every relative link and anchor in the docs resolves', () => {
  const files = markdownFiles();
  assert.ok(files.length >= 8, `found ${files.length} Markdown files`);
  let checked = 0;
  const problems: string[] = [];
  for (const file of files) {
    checked += links(fs.readFileSync(path.join(ROOT, file), 'utf8')).length;
    problems.push(...broken(file));
  }
  assert.ok(checked > 50, `only ${checked} links found: the link pattern is wrong`);
  assert.deepEqual(problems, []);
});

test('the link check finds a broken link and a broken anchor', () => {
  const dir = fs.mkdtempSync(path.join(ROOT, 'dist', 'docs-links-'));
  try {
    const file = path.join(dir, 'page.md');
    fs.writeFileSync(file, '# Title here\n\n[ok](#title-here) [gone](missing.md) [bad](#nowhere) `[code](nope.md)`\n');
    assert.deepEqual(broken(path.relative(ROOT, file)), [
      `${path.relative(ROOT, file)}: missing.md names no file`,
      `${path.relative(ROOT, file)}: #nowhere names no heading of ${path.relative(ROOT, file)}`,
    ]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
