import OpenAI from 'openai';
import type { ProvidersConfig, StageConfig } from '../config/config.js';
import { createUpstreamFetch } from './upstream-fetch.js';

export interface ProviderClients {
  stt: OpenAI;
  llm: OpenAI;
  tts: OpenAI;
}

function client(stage: StageConfig, upstreamFetch: typeof fetch): OpenAI {
  return new OpenAI({
    fetch: upstreamFetch,
    // Local OpenAI-compatible servers (Ollama, vLLM, speaches…) accept any key.
    apiKey: stage.apiKey ?? 'unused',
    ...(stage.baseURL ? { baseURL: stage.baseURL } : {}),
    timeout: stage.timeoutMs,
    maxRetries: stage.maxRetries,
  });
}

/** The SDK clients of the three stages, sharing one connection pool (`upstreamFetch`, default {@link createUpstreamFetch}). */
export function createProviderClients(
  config: ProvidersConfig,
  upstreamFetch: typeof fetch = createUpstreamFetch(),
): ProviderClients {
  return {
    stt: client(config.stt, upstreamFetch),
    llm: client(config.llm, upstreamFetch),
    tts: client(config.tts, upstreamFetch),
  };
}
