import { existsSync, readFileSync, statSync, writeFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MetricValue, SuiteResult } from '../../src/eval/runner.ts';
import { SafetensorsFile } from '../../src/formats/safetensors.ts';
import { parseRecipe, resolvedRecipeYaml } from '../../src/recipe/index.ts';
import { writeRunReport, type WrittenRunReport } from '../../src/report/run-report.ts';
import { makeFakeRun, MAX_STEPS, STEPS_DONE, type FakeRun } from './fake-run.ts';

let run: FakeRun;
let report: WrittenRunReport;
let mdRows: string[][];
let htmlRows: string[][];

beforeAll(async () => {
  run = await makeFakeRun();
  report = await writeRunReport(run.runDir);
  mdRows = markdownTableRows(report.markdown);
  htmlRows = htmlTableRows(report.html);
});

/** Independent formatting of the numbers the report must show. */
const percent = (fraction: number) => (fraction * 100).toFixed(2);
const score = (m: MetricValue) => `${percent(m.value)} ± ${percent(m.stderr)}`;
const count = (n: number) => n.toLocaleString('en');

/** Parameters as the weights hold them: the sum of every stored tensor's element count. */
async function storedParameters(modelDir: string): Promise<number> {
  const file = await SafetensorsFile.open(join(modelDir, 'model.safetensors'));
  try {
    return file.names().reduce((sum, name) => sum + file.info(name).shape.reduce((a, b) => a * b, 1), 0);
  } finally {
    await file.close();
  }
}

function markdownTableRows(markdown: string): string[][] {
  return markdown
    .split('\n')
    .filter((line) => line.startsWith('| ') && !/^\|[-:|]+\|$/.test(line))
    .map((line) => line.slice(2, -2).split(' | ').map((cell) => cell.trim()));
}

function htmlTableRows(html: string): string[][] {
  return [...html.matchAll(/<tr>(.*?)<\/tr>/g)].map(([, row]) => [...row.matchAll(/<t[hd][^>]*>(.*?)<\/t[hd]>/g)].map(([, cell]) => unescapeHtml(cell)));
}

function unescapeHtml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (_, name: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[name]!);
}

function headlineOf(): { md: string; html: string } {
  const md = report.markdown.split('\n').find((line) => line.startsWith('> '))!.slice(2);
  const html = unescapeHtml(/<p class="headline">(.*?)<\/p>/.exec(report.html)![1]);
  return { md, html };
}

function suitePairs(student: SuiteResult[], other: SuiteResult[]) {
  return student.flatMap((mine) => {
    const theirs = other.find((r) => r.suite === mine.suite);
    return theirs ? [{ suite: mine.suite, metric: mine.primaryMetric, s: mine.metrics[mine.primaryMetric], o: theirs.metrics[mine.primaryMetric] }] : [];
  });
}

describe('writeRunReport', () => {
  it('writes report.md and report.html in the run folder, with what it returns', () => {
    expect(report.reportMd).toBe(join(run.runDir, 'report.md'));
    expect(report.reportHtml).toBe(join(run.runDir, 'report.html'));
    expect(readFileSync(report.reportMd, 'utf8')).toBe(report.markdown);
    expect(readFileSync(report.reportHtml, 'utf8')).toBe(report.html);
  });

  it('puts every table in both files, cell for cell', () => {
    expect(mdRows.length).toBeGreaterThan(40);
    expect(htmlRows).toEqual(mdRows);
  });

  it('opens with one headline paragraph: size and accuracy as % of the teacher, and KD against CE', async () => {
    const student = await storedParameters(join(run.runDir, 'final'));
    const teacher = await storedParameters(run.teacherDir);
    const { md, html } = headlineOf();
    expect(html).toBe(md);
    expect(md).toContain(`The student has ${count(student)} parameters, ${percent(student / teacher)}% of the teacher's ${count(teacher)}.`);
    const gsm8k = run.student[0].metrics['exact_match,strict-match'];
    const teacherGsm8k = run.teacher[0].metrics['exact_match,strict-match'];
    const ratio = gsm8k.value / teacherGsm8k.value;
    const ratioStderr = ratio * Math.sqrt((gsm8k.stderr / gsm8k.value) ** 2 + (teacherGsm8k.stderr / teacherGsm8k.value) ** 2);
    expect(md).toContain(`the student reaches ${percent(ratio)}% ± ${percent(ratioStderr)}% of the teacher's score`);
    expect(md).toContain('first-order error propagation');
    const ce = run.ceBaseline[0].metrics['exact_match,strict-match'];
    const difference = gsm8k.value - ce.value;
    expect(md).toContain(`by +${percent(difference)} ± ${percent(Math.sqrt(gsm8k.stderr ** 2 + ce.stderr ** 2))} points`);
    // +3.50 against a combined error of 4.50: no claim that KD won
    expect(md).toContain('this run does not tell them apart');
    expect(report.markdown.indexOf(md)).toBeLessThan(report.markdown.indexOf('## '));
  });

  it('compares the student with its base when the base was evaluated too (a LoRA, full or DPO run)', async () => {
    const other = await makeFakeRun();
    const base = { ...run.student[0], model: 'base' };
    base.metrics = { ...base.metrics, 'exact_match,strict-match': { value: 0.2, stderr: 0.028, n: 200 } };
    mkdirSync(join(other.runDir, 'eval', 'base'), { recursive: true });
    writeFileSync(join(other.runDir, 'eval', 'base', 'gsm8k.json'), JSON.stringify(base));
    const written = await writeRunReport(other.runDir);
    const headline = written.markdown.split('\n').find((line) => line.startsWith('> '))!;
    const mine = run.student[0].metrics['exact_match,strict-match'];
    const stderr = Math.sqrt(mine.stderr ** 2 + 0.028 ** 2);
    // +10.00 against a combined error of 4.28: more than two of them.
    expect(headline).toContain(`On gsm8k, the trained student differs from its base (20.00 ± 2.80) by +${percent(mine.value - 0.2)} ± ${percent(stderr)} points: better by more than two combined standard errors.`);
    expect(report.markdown).not.toContain('differs from its base');
  });

  it('counts the parameters of student and teacher from their weights', async () => {
    const student = await storedParameters(join(run.runDir, 'final'));
    const teacher = await storedParameters(run.teacherDir);
    expect(mdRows).toContainEqual(['student', 'trained from scratch', count(student), count(student), join(run.runDir, 'final', 'config.json')]);
    expect(mdRows).toContainEqual(['teacher', `local: ${run.teacherDir}`, count(teacher), '', join(run.teacherDir, 'config.json')]);
    expect(report.markdown).toContain(`Student / teacher parameters: ${percent(student / teacher)}% (the teacher has ${(teacher / student).toFixed(1)}× as many).`);
  });

  it('lists every model × suite × metric with value ± stderr and n', () => {
    const targets: [string, SuiteResult[]][] = [['student', run.student], ['teacher', run.teacher], ['CE-only student', run.ceBaseline]];
    let rows = 0;
    for (const [label, results] of targets) {
      for (const result of results) {
        for (const [metric, value] of Object.entries(result.metrics)) {
          const primary = metric === result.primaryMetric ? 'yes' : '';
          expect(mdRows).toContainEqual([label, result.suite, result.promptStyle, String(result.shots), metric, primary, score(value), count(value.n)]);
          rows++;
        }
        for (const [kind, metrics] of Object.entries(result.macro)) {
          for (const [metric, value] of Object.entries(metrics)) {
            expect(mdRows).toContainEqual([label, result.suite, result.promptStyle, String(result.shots), `${metric} (macro over ${kind})`, '', score(value), count(value.n)]);
            rows++;
          }
        }
      }
    }
    expect(mdRows.filter((row) => row.length === 8 && row[0] !== 'model')).toHaveLength(rows);
  });

  it('divides the student primary metric by the teacher one, with the uncertainty of both', () => {
    const pairs = suitePairs(run.student, run.teacher);
    expect(pairs.map((p) => p.suite)).toEqual(['gsm8k', 'mmlu']);
    for (const { suite, metric, s, o } of pairs) {
      const ratio = s.value / o.value;
      const stderr = ratio * Math.hypot(s.stderr / s.value, o.stderr / o.value);
      expect(mdRows).toContainEqual([suite, metric, score(s), score(o), `${percent(ratio)}% ± ${percent(stderr)}%`, '']);
    }
  });

  it('compares the KD student with the CE-only student: difference ± combined stderr', () => {
    const [{ suite, metric, s, o }] = suitePairs(run.student, run.ceBaseline);
    const difference = `+${percent(s.value - o.value)} ± ${percent(Math.sqrt(s.stderr ** 2 + o.stderr ** 2))} points`;
    expect(mdRows).toContainEqual([suite, metric, score(s), score(o), difference, 'within two combined standard errors, so this run does not tell them apart', '']);
  });

  it('gives steps, final losses and training throughput from the metrics logs', () => {
    const last = run.metrics.at(-1)!;
    const lastValidation = run.metrics.filter((r) => r.val_loss !== undefined).at(-1)!;
    expect(report.markdown).toContain(`- student: ${STEPS_DONE} of ${MAX_STEPS} steps logged`);
    expect(report.markdown).toContain(`- student: final train loss ${(last.loss as number).toFixed(4)} (step ${STEPS_DONE})`);
    expect(report.markdown).toContain(`- student: last validation loss ${(lastValidation.val_loss as number).toFixed(4)} (step ${lastValidation.step})`);
    expect(report.markdown).toContain(`- CE-only student: final train loss ${(run.ceMetrics.at(-1)!.loss as number).toFixed(4)}`);
    const rates = run.metrics.map((r) => r.tokens_per_second as number).sort((a, b) => a - b);
    const median = (rates[STEPS_DONE / 2 - 1] + rates[STEPS_DONE / 2]) / 2;
    expect(report.markdown).toContain(
      `Training (student): median ${median.toFixed(2)} tokens/s over ${STEPS_DONE} steps (min ${rates[0].toFixed(2)}, max ${rates.at(-1)!.toFixed(2)}); ${(last.elapsed as number).toFixed(1)} s wall-clock`,
    );
  });

  it('gives evaluation documents per second for every model and suite', () => {
    for (const [label, results] of [['student', run.student], ['teacher', run.teacher], ['CE-only student', run.ceBaseline]] as const) {
      for (const r of results) {
        expect(mdRows).toContainEqual([label, r.suite, count(r.n), count(r.cached), `${r.seconds.toFixed(1)} s`, (r.n / r.seconds).toFixed(2)]);
      }
    }
  });

  it('summarizes the generated data', () => {
    const { data } = run;
    expect(mdRows).toContainEqual(['prompts', count(data.prompts)]);
    expect(mdRows).toContainEqual(['examples kept', count(data.examples)]);
    expect(mdRows).toContainEqual(['duplicates dropped', count(data.counts!.duplicates)]);
    for (const [reason, n] of Object.entries(data.counts!.dropped)) expect(mdRows).toContainEqual([`dropped: ${reason}`, count(n)]);
    expect(mdRows).toContainEqual(['response tokens', count(data.counts!.responseTokens)]);
    expect(mdRows).toContainEqual(['soft labels per token (k)', String(data.k)]);
    expect(mdRows).toContainEqual(['shards', data.shards.join(', ')]);
  });

  it('lists final/ and every exported file with its size', () => {
    const size = (path: string) => {
      const bytes = statSync(join(run.runDir, path)).size;
      return bytes < 1024 ? `${count(bytes)} bytes` : `${count(bytes)} bytes (${(bytes / 1024).toFixed(1)} KiB)`;
    };
    for (const path of Object.keys(run.exports)) expect(mdRows).toContainEqual([path, size(path)]);
    expect(mdRows).toContainEqual(['final/model.safetensors', size('final/model.safetensors')]);
    expect(report.markdown).toContain('final/ holds a Hugging Face model folder');
  });

  it('shows the resolved recipe verbatim', () => {
    const recipe = readFileSync(join(run.runDir, 'recipe.yaml'), 'utf8');
    expect(report.markdown).toContain(`\`\`\`yaml\n${recipe}\`\`\``);
    const code = /<pre><code class="language-yaml">([\s\S]*?)<\/code><\/pre>/.exec(report.html)![1];
    expect(unescapeHtml(code)).toBe(recipe);
  });

  it('draws one inline SVG per chart, with a path per series holding a point per logged step', () => {
    const svgs = report.html.match(/<svg[\s\S]*?<\/svg>/g)!;
    const pointsPerSeries = (svg: string) =>
      Object.fromEntries([...svg.matchAll(/<path data-series="([^"]*)" d="([^"]*)"/g)].map(([, name, d]) => [unescapeHtml(name), d.match(/[ML]/g)!.length]));
    const logged = (records: FakeRun['metrics'], key: string) => records.filter((r) => typeof r[key] === 'number').length;
    expect(svgs.map(pointsPerSeries)).toEqual([
      {
        'train loss': logged(run.metrics, 'loss'),
        'validation loss': logged(run.metrics, 'val_loss'),
        'CE-only student: train loss': logged(run.ceMetrics, 'loss'),
        'CE-only student: validation loss': logged(run.ceMetrics, 'val_loss'),
      },
      { 'KD (train)': logged(run.metrics, 'kd'), 'CE (train)': logged(run.metrics, 'ce'), 'KD (validation)': logged(run.metrics, 'val_kd'), 'CE (validation)': logged(run.metrics, 'val_ce'), 'CE-only student: CE (validation)': logged(run.ceMetrics, 'val_loss') },
      { train: logged(run.metrics, 'top1_agreement'), validation: logged(run.metrics, 'val_top1_agreement') },
      { gsm8k: logged(run.metrics, 'eval_gsm8k') },
    ]);
    expect(logged(run.metrics, 'loss')).toBe(STEPS_DONE);
  });

  it('links the same charts from report.md as standalone SVG files', () => {
    expect(report.charts.map((path) => path.slice(run.runDir.length + 1))).toEqual([
      'report-charts/loss.svg',
      'report-charts/kd-ce.svg',
      'report-charts/agreement.svg',
      'report-charts/eval-during-training.svg',
    ]);
    for (const path of report.charts) {
      expect(report.markdown).toContain(`](${path.slice(run.runDir.length + 1)})`);
      const svg = readFileSync(path, 'utf8');
      expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      expect(report.html).toContain(svg.trim().replace(' xmlns="http://www.w3.org/2000/svg"', ''));
    }
  });

  it('is self-contained: no script, link, external resource or URL', () => {
    expect(report.html).not.toMatch(/https?:\/\//);
    expect(report.html).not.toMatch(/<script|<link|<img|<iframe|\bsrc=|\bhref=|url\(|@import/i);
    expect(report.html).toMatch(/^<!DOCTYPE html>/);
    expect(report.html).toContain('<style>');
  });
});

describe('writeRunReport on a run with little in it', () => {
  it('says what is missing instead of failing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'report-bare-'));
    writeFileSync(join(root, 'train.jsonl'), '{"text": "hello"}\n');
    const recipe = parseRecipe(
      'name: bare\nstudent: { type: scratch, architecture: { hidden_size: 16, intermediate_size: 32, num_layers: 1, num_heads: 2 } }\ndata: { train: train.jsonl }\ntrain: { max_steps: 5 }\n',
      'bare.yaml',
      root,
    );
    const runDir = join(root, 'runs', 'bare');
    mkdirSync(runDir, { recursive: true });
    writeFileSync(join(runDir, 'recipe.yaml'), resolvedRecipeYaml(recipe));
    writeFileSync(join(runDir, 'metrics.jsonl'), '{"step":1,"loss":4.5}\n{"step":2,"loss":null}\n{"step":3,"loss":4.1}\n');
    const { markdown, html } = await writeRunReport(runDir);
    expect(markdown).toContain("The student's size is unknown (no final/ or checkpoint yet).");
    expect(markdown).toContain('The student was not evaluated (no results in eval/), so its accuracy is compared with neither the teacher nor CE-only training.');
    expect(markdown).toContain('No evaluation results in this run');
    expect(markdown).toContain(`This run generated no data: the recipe trains on ${join(root, 'train.jsonl')}.`);
    expect(markdown).toContain('No final/ yet');
    expect(markdown).toContain('- train loss: 4.5000 at step 1 → 4.1000 at step 3; lowest 4.1000 at step 3; 1 non-finite values left as gaps');
    // the null loss splits the line: two sub-paths of one point each
    expect(/<path data-series="train loss" d="([^"]*)"/.exec(html)![1].match(/M/g)).toHaveLength(2);
    expect(existsSync(join(runDir, 'report-charts', 'kd-ce.svg'))).toBe(false);
  });
});
