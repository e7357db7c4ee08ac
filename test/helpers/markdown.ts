/**
 * Markdown as the docs tests read it: fenced code blocks, sections under a
 * heading, table rows. Fences are ``` or ~~~ at the start of a line, as in
 * every file of docs/; a heading inside a code block is not a heading.
 */

const FENCE = /^(```|~~~)([^\n]*)\n([\s\S]*?)^\1[^\n]*$/gm;

export interface CodeBlock {
  /** The info string after the fence (`console`, `js`, `` for none). */
  lang: string;
  /** The block's text, ending with a newline (or '' when empty). */
  text: string;
  /** The non-empty line just before the opening fence ('' if none). */
  before: string;
}

/** The text with every fenced code block taken out. */
export function withoutCodeBlocks(markdown: string): string {
  return markdown.replace(FENCE, '');
}

/** Every fenced code block, in order. */
export function codeBlocks(markdown: string): CodeBlock[] {
  return [...markdown.matchAll(FENCE)].map((match) => {
    const preceding = markdown.slice(0, match.index).split('\n').filter((line) => line.trim() !== '');
    return { lang: match[2]!.trim(), text: match[3]!, before: preceding.at(-1)?.trim() ?? '' };
  });
}

/** The text under `heading` (its title, without the #s), up to the next heading of the same or a higher level. */
export function section(markdown: string, heading: string): string {
  const lines = markdown.split('\n');
  let fence: string | undefined;
  let level = 0;
  const out: string[] = [];
  for (const line of lines) {
    const marker = /^(```|~~~)/.exec(line)?.[1];
    if (marker && (fence === undefined || marker === fence)) fence = fence === undefined ? marker : undefined;
    const title = marker || fence !== undefined ? undefined : /^(#{1,6})\s+(.+?)\s*#*\s*$/.exec(line);
    if (title && level > 0 && title[1]!.length <= level) break;
    if (level > 0) out.push(line);
    if (title && level === 0 && title[2] === heading) level = title[1]!.length;
  }
  if (level === 0) throw new Error(`no heading "${heading}"`);
  return out.join('\n');
}

/** The cells of every table row outside code blocks (header and separator rows included). */
export function tableRows(markdown: string): string[][] {
  return withoutCodeBlocks(markdown)
    .split('\n')
    .filter((line) => /^\s*\|/.test(line))
    .map((line) =>
      line
        .trim()
        .replace(/^\||\|$/g, '')
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim()),
    );
}
