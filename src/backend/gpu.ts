import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

export interface GpuCheck {
  /** What was looked at: 'nvidia-smi', '/proc/driver/nvidia/gpus' or '/dev/nvidia0'. */
  source: string;
  found: boolean;
  detail: string;
}

export interface GpuEvidence {
  /** An NVIDIA GPU is visible to this process by at least one of the checks. */
  visible: boolean;
  /** GPU names, from `nvidia-smi -L` or else from the driver's /proc entries. */
  devices: string[];
  checks: GpuCheck[];
}

/** Where to look; tests point these at a fake tree. */
export interface GpuProbeEnv {
  path: string;
  root: string;
}

const SMI_TIMEOUT_MS = 10_000;

export async function detectGpu(
  env: GpuProbeEnv = { path: process.env.PATH ?? '', root: '/' },
): Promise<GpuEvidence> {
  const smi = await probeSmi(env.path);
  const proc = probeProc(join(env.root, 'proc/driver/nvidia/gpus'));
  const deviceNode = existsSync(join(env.root, 'dev/nvidia0'));
  const checks: GpuCheck[] = [
    smi.check,
    proc.check,
    { source: '/dev/nvidia0', found: deviceNode, detail: deviceNode ? 'device node exists' : 'absent' },
  ];
  const devices = smi.devices.length > 0 ? smi.devices : proc.devices;
  return { visible: devices.length > 0 || proc.check.found || deviceNode, devices, checks };
}

async function probeSmi(path: string): Promise<{ check: GpuCheck; devices: string[] }> {
  const source = 'nvidia-smi';
  const smi = findExecutable(source, path);
  if (smi === null) return { check: { source, found: false, detail: 'not on PATH' }, devices: [] };
  try {
    const { stdout } = await promisify(execFile)(smi, ['-L'], { timeout: SMI_TIMEOUT_MS });
    const devices = stdout
      .split('\n')
      .filter((line) => line.startsWith('GPU '))
      .map((line) => line.replace(/\s*\(UUID:.*\)\s*$/, '').trim());
    return { check: { source, found: devices.length > 0, detail: `${smi} -L lists ${devices.length} GPU(s)` }, devices };
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { check: { source, found: false, detail: `${smi} -L failed: ${message}` }, devices: [] };
  }
}

function probeProc(dir: string): { check: GpuCheck; devices: string[] } {
  const source = '/proc/driver/nvidia/gpus';
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return { check: { source, found: false, detail: 'absent' }, devices: [] };
  }
  const devices = entries.map((entry) => modelName(join(dir, entry, 'information')) ?? entry);
  return { check: { source, found: entries.length > 0, detail: `${entries.length} GPU(s) listed` }, devices };
}

function modelName(informationFile: string): string | null {
  try {
    return /^Model:\s*(.+)$/m.exec(readFileSync(informationFile, 'utf8'))?.[1].trim() ?? null;
  } catch {
    return null;
  }
}

function findExecutable(name: string, path: string): string | null {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return null;
}
