/**
 * Real llama.cpp through node-llama-cpp's prebuilt CPU binaries, asked for the full next-token distribution:
 * sampling with temperature 1, topK = vocabulary size, topP 1, minP 0 leaves every logit as it is. Its KV
 * cache is F32 and flash attention is off, since both otherwise round keys and values to F16.
 */
import { getLlama, LlamaLogLevel, type ControlledEvaluateInputItem, type Llama, type Token } from 'node-llama-cpp';

let llama: Llama | undefined;

export async function llamaCpp(): Promise<Llama> {
  llama ??= await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  return llama;
}

export async function disposeLlamaCpp(): Promise<void> {
  await llama?.dispose();
  llama = undefined;
}

/** llama.cpp's next-token distribution after each prefix of `ids`, as dense rows [T][vocab]; `lora`: a GGUF adapter. */
export async function llamaCppProbabilities(path: string, ids: number[], vocabSize: number, lora?: string): Promise<number[][]> {
  const model = await (await llamaCpp()).loadModel({ modelPath: path, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize: 128,
    // ggml's worker threads spin while they wait: on two cores that costs ~100 ms a token, one thread ~0.3 ms
    threads: 1,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
    ...(lora && { lora: { adapters: [{ filePath: lora }] } }),
  });
  try {
    const options = { temperature: 1, topK: vocabSize, topP: 1, minP: 0 };
    const input = ids.map((id): ControlledEvaluateInputItem => [id as Token, { generateNext: { probabilities: true, options } }]);
    const outputs = await context.getSequence().controlledEvaluate(input);
    return outputs.map((output) => {
      const row = new Array<number>(vocabSize).fill(Number.NaN);
      for (const [token, p] of output!.next.probabilities!) row[token] = p;
      return row;
    });
  } finally {
    await context.dispose();
    await model.dispose();
  }
}
