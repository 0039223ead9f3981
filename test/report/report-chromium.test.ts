/**
 * report.html as a browser shows it: headless Chromium parses it without a console message (an SVG
 * attribute it cannot read would log one), keeps every chart in the DOM, and paints a page that is not blank.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeRunReport, type WrittenRunReport } from '../../src/report/run-report.ts';
import { makeFakeRun } from './fake-run.ts';
import { decodePng } from './png.ts';

const chromium = spawnSync('which', ['chromium'], { encoding: 'utf8' }).stdout.trim() || null;
const why = chromium ? '' : ' (skipped: no `chromium` on PATH)';

let report: WrittenRunReport;

beforeAll(async () => {
  if (chromium) report = await writeRunReport((await makeFakeRun()).runDir);
});

function runChromium(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  const profile = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
  const flags = ['--headless', '--disable-gpu', '--no-sandbox', '--enable-logging=stderr', '--v=0', `--user-data-dir=${profile}`];
  return new Promise((resolve, reject) => {
    execFile(chromium!, [...flags, ...args], { timeout: 90_000, maxBuffer: 64 << 20 }, (error, stdout, stderr) => (error ? reject(error) : resolve({ stdout, stderr })));
  });
}

/** Lines Chromium logs for the page's console: parse errors of SVG attributes, failed loads, script errors. */
function consoleMessages(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.includes(':CONSOLE:'));
}

describe('report.html in headless Chromium', () => {
  it.skipIf(!chromium)(`keeps every chart in the rendered DOM and logs nothing to the console${why}`, async () => {
    const { stdout, stderr } = await runChromium('--dump-dom', pathToFileURL(report.reportHtml).href);
    expect(consoleMessages(stderr)).toEqual([]);
    expect(stdout.match(/<svg /g)).toHaveLength(4);
    for (const id of ['loss', 'kd-ce', 'agreement', 'eval-during-training']) expect(stdout).toContain(`<figure id="chart-${id}">`);
    const paths = (text: string) => text.match(/<path data-series=/g)?.length;
    expect(paths(stdout)).toBe(paths(report.html));
    expect(stdout).toContain('Run report: fake-kd');
  });

  it.skipIf(!chromium)(`paints a screenshot that is not blank${why}`, async () => {
    const png = join(mkdtempSync(join(tmpdir(), 'report-shot-')), 'report.png');
    const { stderr } = await runChromium('--hide-scrollbars', '--force-device-scale-factor=1', '--window-size=1000,4000', `--screenshot=${png}`, pathToFileURL(report.reportHtml).href);
    expect(consoleMessages(stderr)).toEqual([]);
    expect(statSync(png).size).toBeGreaterThan(20_000);
    const { width, height, channels, pixels } = decodePng(readFileSync(png));
    expect([width, height]).toEqual([1000, 4000]);
    const colors = new Set<number>();
    let inked = 0;
    const near = (r: number, g: number, b: number, target: [number, number, number]) => Math.abs(r - target[0]) + Math.abs(g - target[1]) + Math.abs(b - target[2]) < 40;
    let blue = 0;
    let red = 0;
    for (let i = 0; i < pixels.length; i += channels) {
      const [r, g, b] = [pixels[i], pixels[i + 1], pixels[i + 2]];
      colors.add((r << 16) | (g << 8) | b);
      if (r + g + b < 600) inked++;
      if (near(r, g, b, [0x1f, 0x77, 0xb4])) blue++;
      if (near(r, g, b, [0xd6, 0x27, 0x28])) red++;
    }
    expect(colors.size).toBeGreaterThan(50);
    expect(inked / (width * height)).toBeGreaterThan(0.02);
    // the charts' first two series colours are painted (the headline's blue bar alone is under 1,000 pixels)
    expect(blue).toBeGreaterThan(2_000);
    expect(red).toBeGreaterThan(1_000);
  });
});
