// Every backend spec llem knows. Adding a backend = one file in this folder + one line here, and its
// child side (src/backends/<name>/) that the spec's loadBackend() imports.
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
