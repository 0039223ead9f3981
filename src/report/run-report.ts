/**
 * The run report: runs/<name>/report.md (charts as report-charts/<id>.svg beside it) and report.html, one
 * self-contained file with the same content and inline SVG charts. Written from whatever the run folder
 * holds, so it can be rewritten at any time, also for a run still going.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.ts';
import { chartFile } from './document.ts';
import { gatherRunReport } from './gather.ts';
import { renderHtml } from './html.ts';
import { renderMarkdown } from './markdown.ts';
import { reportBlocks } from './sections.ts';
import { lineChartSvg } from './svg-chart.ts';

export interface WrittenRunReport {
  markdown: string;
  html: string;
  /** Paths of report.md, report.html and the chart SVGs that report.md links. */
  reportMd: string;
  reportHtml: string;
  charts: string[];
}

export async function writeRunReport(runDir: string): Promise<WrittenRunReport> {
  const report = await gatherRunReport(runDir);
  const blocks = reportBlocks(report);
  const markdown = renderMarkdown(blocks);
  const html = renderHtml(`Run report: ${report.files.name}`, blocks);
  const charts: string[] = [];
  for (const { id, chart } of report.charts) {
    const path = join(runDir, chartFile(id));
    await writeFileAtomic(path, `${lineChartSvg(chart, { standalone: true })}\n`);
    charts.push(path);
  }
  const reportMd = join(runDir, 'report.md');
  const reportHtml = join(runDir, 'report.html');
  await writeFileAtomic(reportMd, markdown);
  await writeFileAtomic(reportHtml, html);
  return { markdown, html, reportMd, reportHtml, charts };
}
