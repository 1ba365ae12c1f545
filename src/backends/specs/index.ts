// Every backend spec the grammar knows. Adding a backend = one file in this folder + one line here.
import type { BackendSpec } from '../types.ts';
import { llamacppSpec } from './llamacpp.ts';
import { vllmSpec } from './vllm.ts';
import { sglangSpec } from './sglang.ts';
import { trtllmSpec } from './trtllm.ts';
import { llamaServerSpec } from './llama-server.ts';
import { openaiSpec } from './openai.ts';
import { commandSpec } from './command.ts';
import { pytorchSpec } from './pytorch.ts';

export const builtinBackendSpecs: readonly BackendSpec[] = [
  llamacppSpec,
  vllmSpec,
  sglangSpec,
  trtllmSpec,
  llamaServerSpec,
  openaiSpec,
  commandSpec,
  pytorchSpec,
];
