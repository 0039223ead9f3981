import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { envVarName } from '../../src/recipe/index.ts';
import { describeIssues } from '../../src/recipe/issues.ts';

describe('envVarName', () => {
  it('accepts variable names and rejects anything else, such as a pasted secret', () => {
    expect(envVarName().safeParse('OPENAI_API_KEY').success).toBe(true);
    expect(envVarName().safeParse('_x1').success).toBe(true);
    expect(envVarName().safeParse('sk-abc123').success).toBe(false);
    expect(envVarName().safeParse('1ABC').success).toBe(false);
  });

  it('never echoes what was given to an *_env key in the error', () => {
    const data = { teacher: { api_key_env: 'sk-secret-value' } };
    const schema = z.strictObject({ teacher: z.strictObject({ api_key_env: envVarName() }) });
    const result = schema.safeParse(data);
    expect(result.success).toBe(false);
    const [problem] = describeIssues(result.error!.issues, data);
    expect(problem.keyPath).toEqual(['teacher', 'api_key_env']);
    expect(problem.message).toBe('expected the name of an environment variable, like OPENAI_API_KEY');
  });
});
