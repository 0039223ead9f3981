/**
 * Report blocks as one self-contained HTML file: inline CSS, charts as inline SVG, no script, no external
 * font, image or style sheet, so it opens offline and can be mailed as it is.
 */
import type { Block } from './document.ts';
import { escapeXml, lineChartSvg } from './svg-chart.ts';

const STYLE = `
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1a1a1a; background: #fafafa; }
main { max-width: 960px; margin: 0 auto; padding: 24px; background: #ffffff; }
h1 { font-size: 1.6em; margin-top: 0; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #dddddd; padding-bottom: 4px; }
h3 { font-size: 1.05em; }
.headline { background: #f1f5fb; border-left: 4px solid #1f77b4; padding: 12px 16px; line-height: 1.5; }
table { border-collapse: collapse; margin: 12px 0; font-size: 0.9em; }
th, td { border: 1px solid #dddddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
pre { background: #f6f8fa; padding: 12px; overflow-x: auto; font-size: 0.85em; }
figure { margin: 16px 0; }
figcaption ul { margin: 4px 0; font-size: 0.9em; color: #444444; }
svg { max-width: 100%; height: auto; }
`;

export function renderHtml(title: string, blocks: readonly Block[]): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeXml(title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    '<main>',
    ...blocks.map(blockHtml),
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

function blockHtml(block: Block): string {
  switch (block.kind) {
    case 'heading':
      return `<h${block.level}>${escapeXml(block.text)}</h${block.level}>`;
    case 'paragraph':
      return `<p${block.headline ? ' class="headline"' : ''}>${escapeXml(block.text)}</p>`;
    case 'list':
      return `<ul>\n${block.items.map((item) => `<li>${escapeXml(item)}</li>`).join('\n')}\n</ul>`;
    case 'table':
      return tableHtml(block.header, block.rows, block.numeric ?? []);
    case 'code':
      return `<pre><code class="language-${escapeXml(block.language)}">${escapeXml(block.text)}</code></pre>`;
    case 'chart': {
      const caption = block.caption.map((line) => `<li>${escapeXml(line)}</li>`).join('\n');
      return `<figure id="chart-${escapeXml(block.id)}">\n${lineChartSvg(block.chart)}\n<figcaption><ul>\n${caption}\n</ul></figcaption>\n</figure>`;
    }
  }
}

function tableHtml(header: readonly string[], rows: readonly string[][], numeric: readonly boolean[]): string {
  const head = `<tr>${header.map((text) => `<th>${escapeXml(text)}</th>`).join('')}</tr>`;
  const body = rows.map((row) => `<tr>${row.map((text, i) => `<td${numeric[i] ? ' class="num"' : ''}>${escapeXml(text)}</td>`).join('')}</tr>`);
  return `<table>\n<thead>${head}</thead>\n<tbody>\n${body.join('\n')}\n</tbody>\n</table>`;
}
