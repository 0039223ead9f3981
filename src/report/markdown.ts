/** Report blocks as GitHub-flavoured Markdown; charts are linked SVG files (report-charts/<id>.svg). */
import { chartFile, type Block } from './document.ts';

export function renderMarkdown(blocks: readonly Block[]): string {
  return `${blocks.map(blockMarkdown).join('\n\n')}\n`;
}

function blockMarkdown(block: Block): string {
  switch (block.kind) {
    case 'heading':
      return `${'#'.repeat(block.level)} ${block.text}`;
    case 'paragraph':
      return block.headline ? `> ${block.text}` : block.text;
    case 'list':
      return block.items.map((item) => `- ${item}`).join('\n');
    case 'table':
      return tableMarkdown(block.header, block.rows, block.numeric ?? []);
    case 'code':
      return fenced(block.language, block.text);
    case 'chart':
      return [`![${block.chart.title}](${chartFile(block.id)})`, '', ...block.caption.map((line) => `- ${line}`)].join('\n');
  }
}

function tableMarkdown(header: readonly string[], rows: readonly string[][], numeric: readonly boolean[]): string {
  const line = (cells: readonly string[]) => `| ${cells.map(cell).join(' | ')} |`;
  const rule = `|${header.map((_, i) => (numeric[i] ? '---:' : '---')).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** A fence longer than any run of backticks in the text, so the text comes out verbatim. */
function fenced(language: string, text: string): string {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}${language}\n${text.replace(/\n$/, '')}\n${fence}`;
}
