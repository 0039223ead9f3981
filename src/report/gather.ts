/** Everything a run report says, read from the run folder and derived once, before any rendering. */
import { runCharts, type ReportChart } from './charts.ts';
import { pairPrimaryMetrics, type SuitePair } from './comparisons.ts';
import { studentSize, teacherSize, type ModelSize } from './model-size.ts';
import { readRunFiles, type RunFiles } from './run-files.ts';

export interface RunReport {
  files: RunFiles;
  /** Null when the recipe could not be loaded (files.recipeError says why). */
  student: ModelSize | null;
  teacher: ModelSize | null;
  /** The student's primary metrics against the teacher's, the CE-only student's, and its base's (LoRA, full). */
  vsTeacher: SuitePair[];
  vsCeBaseline: SuitePair[];
  vsBase: SuitePair[];
  charts: ReportChart[];
}

export async function gatherRunReport(runDir: string): Promise<RunReport> {
  const files = await readRunFiles(runDir);
  const { recipe, evals } = files;
  const student = evals.student ?? [];
  return {
    files,
    student: recipe && (await studentSize(recipe, runDir)),
    teacher: recipe && (await teacherSize(recipe)),
    vsTeacher: pairPrimaryMetrics(student, evals.teacher ?? []),
    vsCeBaseline: pairPrimaryMetrics(student, evals['ce-baseline'] ?? []),
    vsBase: pairPrimaryMetrics(student, evals.base ?? []),
    charts: runCharts(files.metrics, files.ceBaselineMetrics),
  };
}
