/**
 * The teacher requests a generate stage needs, each with the key its answer is cached under. A key hashes
 * everything that decides the answer (provider, model, weights digest, the request itself) and nothing
 * that does not (endpoint, position in the file, where a local model lies), so a re-run finds every
 * answer it already has, and a moved or cloned project too.
 */
import type { SeedPrompt } from '../../../datasets/prompts.ts';
import { hashString } from '../../../datasets/split.ts';
import type { GenerateSpec } from '../../recipe/index.ts';
import type { GenerateRequest } from '../../teachers/teacher.ts';
import type { TeacherIdentity } from '../../run/data-summary.ts';
import { requestKey } from '../../run/response-cache.ts';

/** One request to a teacher: generate an answer, or score a given sequence of ids (label mode). */
export type TeacherJob =
  | { kind: 'generate'; key: string; prompt: number; sample: number; request: GenerateRequest }
  | { kind: 'label'; key: string; prompt: number; sample: 0; ids: number[]; responseStart: number; k: number };

export function generateJobs(prompts: readonly SeedPrompt[], spec: GenerateSpec, teacher: TeacherIdentity, seed: number): TeacherJob[] {
  return prompts.flatMap((prompt, index) =>
    Array.from({ length: spec.samplesPerPrompt }, (_, sample): TeacherJob => {
      const request: GenerateRequest = {
        prompt: prompt.text,
        ...(spec.system !== null && { system: spec.system }),
        maxTokens: spec.maxTokens,
        temperature: spec.temperature,
        topLogprobs: spec.k,
        // From the content, not the position: the same prompt and sample number draw the same answer.
        seed: hashString(`${sample}\u0000${prompt.text}`, seed) & 0x7fffffff,
      };
      return { kind: 'generate', key: requestKey({ teacher: keyedTeacher(teacher), request }), prompt: index, sample, request };
    }),
  );
}

/** Label mode: the teacher scores prompt + response, ids in the (shared) tokenizer. */
export function labelJobs(
  sequences: readonly { promptIds: number[]; responseIds: number[] }[],
  k: number,
  teacher: TeacherIdentity,
): TeacherJob[] {
  return sequences.map(({ promptIds, responseIds }, index) => {
    const ids = [...promptIds, ...responseIds];
    return { kind: 'label', key: requestKey({ teacher: keyedTeacher(teacher), score: { ids, k } }), prompt: index, sample: 0, ids, responseStart: promptIds.length, k };
  });
}

/**
 * The teacher as keys see it: a local model by its content digest alone, since its path changes with the
 * project's folder (and the validation split hashes these keys); a served one by its name and digest.
 */
function keyedTeacher(teacher: TeacherIdentity): Partial<TeacherIdentity> {
  return teacher.provider === 'local' ? { provider: teacher.provider, digest: teacher.digest } : teacher;
}
