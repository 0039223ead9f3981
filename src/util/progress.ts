/**
 * Training progress for people: a live bar when stderr is a terminal, a plain line every few steps or
 * seconds when it is a file or pipe, nothing in --json mode (stdout then carries the machine output).
 * Library code reports through the `Logger` it is given, never through console.
 */
import { MultiBar, Presets } from 'cli-progress';
import type { SingleBar } from 'cli-progress';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

export const silentLogger: Logger = { info() {}, warn() {} };

/** What progress and log lines are written to; process.stderr in the CLI. */
export interface TextStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export function streamLogger(stream: TextStream): Logger {
  return {
    info: (message) => void stream.write(`${message}\n`),
    warn: (message) => void stream.write(`slm-train: warning: ${message}\n`),
  };
}

export interface ProgressUpdate {
  step: number;
  loss?: number;
  lr?: number;
  /** Tokens trained on since the previous update. */
  tokens?: number;
}

/** A progress display that is also the logger to use while it runs, so log lines do not tear the bar. */
export interface Progress extends Logger {
  update(update: ProgressUpdate): void;
  /** The steps the run will take, once known (training by epochs knows it when its data is packed). */
  setTotal(totalSteps: number): void;
  stop(): void;
}

export interface ProgressOptions {
  totalSteps: number;
  /** The step a resumed run starts from. */
  startStep?: number;
  stream: TextStream;
  /** --json: no progress and no info lines; warnings still go to the stream. */
  json?: boolean;
  /** Plain-line mode prints when this many steps [10] or seconds [30] have passed since the last line. */
  everySteps?: number;
  everySeconds?: number;
  /** Milliseconds; injectable for tests. */
  now?: () => number;
}

export function createProgress(options: ProgressOptions): Progress {
  if (options.json) return { ...streamLogger(options.stream), info() {}, update() {}, setTotal() {}, stop() {} };
  const rate = new RateTracker(options.now ?? Date.now);
  return options.stream.isTTY ? new BarProgress(options, rate) : new LineProgress(options, rate);
}

class LineProgress implements Progress {
  private readonly logger: Logger;
  private lastStep: number;
  private lastTime: number;
  private totalSteps: number;

  constructor(
    private readonly options: ProgressOptions,
    private readonly rate: RateTracker,
  ) {
    this.logger = streamLogger(options.stream);
    this.lastStep = options.startStep ?? 0;
    this.lastTime = rate.now();
    this.totalSteps = options.totalSteps;
  }

  setTotal(totalSteps: number): void {
    this.totalSteps = totalSteps;
  }

  update(update: ProgressUpdate): void {
    this.rate.record(update.step, update.tokens ?? 0);
    const { everySteps = 10, everySeconds = 30 } = this.options;
    const { totalSteps } = this;
    const due =
      update.step >= totalSteps ||
      update.step - this.lastStep >= everySteps ||
      this.rate.now() - this.lastTime >= everySeconds * 1000;
    if (!due) return;
    this.options.stream.write(`${formatStatus(update, totalSteps, this.rate)}\n`);
    this.lastStep = update.step;
    this.lastTime = this.rate.now();
  }

  info(message: string): void {
    this.logger.info(message);
  }

  warn(message: string): void {
    this.logger.warn(message);
  }

  stop(): void {}
}

class BarProgress implements Progress {
  private readonly bars: MultiBar;
  private readonly bar: SingleBar;
  private totalSteps: number;

  constructor(
    private readonly options: ProgressOptions,
    private readonly rate: RateTracker,
  ) {
    this.bars = new MultiBar(
      {
        stream: options.stream as NodeJS.WritableStream,
        format: '{bar} {status}',
        // cli-progress's graceful exit listens for SIGINT, which swallows the first Ctrl-C; without it
        // nothing would restore a hidden cursor, so the cursor stays visible.
        gracefulExit: false,
        hideCursor: false,
      },
      Presets.shades_classic,
    );
    const start = options.startStep ?? 0;
    this.totalSteps = options.totalSteps;
    this.bar = this.bars.create(options.totalSteps, start, { status: `step ${start}/${options.totalSteps}` });
  }

  setTotal(totalSteps: number): void {
    this.totalSteps = totalSteps;
    this.bar.setTotal(totalSteps);
  }

  update(update: ProgressUpdate): void {
    this.rate.record(update.step, update.tokens ?? 0);
    this.bar.update(update.step, { status: formatStatus(update, this.totalSteps, this.rate) });
    // Training keeps the event loop busy, so cli-progress's redraw timer rarely fires: draw now.
    this.bars.update();
  }

  info(message: string): void {
    this.bars.log(`${message}\n`);
  }

  warn(message: string): void {
    this.bars.log(`slm-train: warning: ${message}\n`);
  }

  stop(): void {
    this.bars.update(); // MultiBar.stop alone drops log lines still waiting for the next redraw
    this.bars.stop();
  }
}

/**
 * Throughput over the last few updates. The time before the first updates (loading, kernel compilation,
 * the first backward pass) is left out: the pace is measured from the end of the `warmup`-th step after
 * the start, so a run's first lines show no rate or ETA rather than one off by a hundredfold.
 */
/** Steps whose time says nothing of the pace to come. */
const WARMUP_STEPS = 2;

export class RateTracker {
  private readonly samples: { time: number; step: number; tokens: number }[] = [];
  private tokens = 0;
  private recorded = 0;

  constructor(
    readonly now: () => number,
    private readonly window = 20,
    private readonly warmup = WARMUP_STEPS,
  ) {}

  record(step: number, tokens: number): void {
    this.recorded++;
    if (this.recorded < this.warmup) return;
    // The warm-up's last step anchors the window: its tokens are not counted, its end is the start.
    if (this.recorded > this.warmup) this.tokens += tokens;
    this.samples.push({ time: this.now(), step, tokens: this.tokens });
    if (this.samples.length > this.window + 1) this.samples.shift();
  }

  /** Undefined until time has passed and tokens were counted. */
  tokensPerSecond(): number | undefined {
    const { first, last, seconds } = this.span();
    const tokens = last.tokens - first.tokens;
    return seconds > 0 && tokens > 0 ? tokens / seconds : undefined;
  }

  /** Seconds until `totalSteps` at the recent pace. */
  etaSeconds(totalSteps: number): number | undefined {
    const { first, last, seconds } = this.span();
    const steps = last.step - first.step;
    return steps > 0 ? ((totalSteps - last.step) * seconds) / steps : undefined;
  }

  private span() {
    const first = this.samples[0] ?? { time: 0, step: 0, tokens: 0 };
    const last = this.samples[this.samples.length - 1] ?? first;
    return { first, last, seconds: (last.time - first.time) / 1000 };
  }
}

/** `step 120/1000 | loss 3.2145 | lr 2.95e-4 | 480 tok/s | eta 12m03s`; unknown parts are left out. */
export function formatStatus(update: ProgressUpdate, totalSteps: number, rate: RateTracker): string {
  const parts = [`step ${update.step}/${totalSteps}`];
  if (update.loss !== undefined) parts.push(`loss ${update.loss.toFixed(4)}`);
  if (update.lr !== undefined) parts.push(`lr ${update.lr.toExponential(2)}`);
  const tokensPerSecond = rate.tokensPerSecond();
  if (tokensPerSecond !== undefined) parts.push(`${Math.round(tokensPerSecond)} tok/s`);
  const eta = rate.etaSeconds(totalSteps);
  if (eta !== undefined) parts.push(`eta ${formatDuration(eta)}`);
  return parts.join(' | ');
}

/** `45s`, `12m03s`, `2h05m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
}
