import type { ProvidersConfig } from '../config/config.js';
import { UpstreamClient, fetchTransport, undiciTransport } from './upstream.js';

export interface ProviderClients {
  stt: UpstreamClient;
  llm: UpstreamClient;
  tts: UpstreamClient;
}

/**
 * The clients of the three stages, sharing one connection pool: undici's `request` API by default,
 * or `upstreamFetch` when given (a proxy's `fetch`, a test double).
 */
export function createProviderClients(
  config: ProvidersConfig,
  upstreamFetch?: typeof fetch,
): ProviderClients {
  const transport = upstreamFetch ? fetchTransport(upstreamFetch) : undiciTransport();
  return {
    stt: new UpstreamClient(config.stt, transport),
    llm: new UpstreamClient(config.llm, transport),
    tts: new UpstreamClient(config.tts, transport),
  };
}
