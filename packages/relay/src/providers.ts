import OpenAI from 'openai';
import type { ProvidersConfig, StageConfig } from './config.js';

export interface ProviderClients {
  stt: OpenAI;
  llm: OpenAI;
  tts: OpenAI;
}

function client(stage: StageConfig): OpenAI {
  return new OpenAI({
    // Local OpenAI-compatible servers (Ollama, vLLM, speaches…) accept any key.
    apiKey: stage.apiKey ?? 'unused',
    ...(stage.baseURL ? { baseURL: stage.baseURL } : {}),
    timeout: stage.timeoutMs,
    maxRetries: stage.maxRetries,
  });
}

export function createProviderClients(config: ProvidersConfig): ProviderClients {
  return { stt: client(config.stt), llm: client(config.llm), tts: client(config.tts) };
}
