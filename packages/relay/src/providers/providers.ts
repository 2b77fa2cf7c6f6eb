import { DEFAULT_CIRCUIT, type ProvidersConfig, type StageConfig } from '../config/config.js';
import type { Logger } from '../logger.js';
import { CircuitBreaker } from './circuit.js';
import {
  FailoverClient,
  providerName,
  type FailoverProvider,
  type ProviderClient,
  type ProviderObserver,
} from './failover.js';
import {
  UpstreamClient,
  fetchTransport,
  undiciTransport,
  type UpstreamTransport,
} from './upstream.js';

export interface ProviderClients {
  stt: ProviderClient;
  llm: ProviderClient;
  tts: ProviderClient;
}

export interface ProviderClientsOptions {
  /** Per-provider requests, failovers and circuit states (the relay's metrics). */
  observer?: ProviderObserver;
  /** Failovers and opened circuits are logged here. */
  log?: Pick<Logger, 'warn'>;
  /** The circuit breakers' clock in ms (default `performance.now`). */
  now?: () => number;
}

/**
 * The clients of the three stages, sharing one connection pool: undici's `request` API by default,
 * or `upstreamFetch` when given (a proxy's `fetch`, a test double). Each stage tries its provider,
 * then its `fallbacks` in order (README "Provider failover").
 */
export function createProviderClients(
  config: ProvidersConfig,
  upstreamFetch?: typeof fetch,
  options: ProviderClientsOptions = {},
): ProviderClients {
  const transport = upstreamFetch ? fetchTransport(upstreamFetch) : undiciTransport();
  const circuit = config.circuit ?? DEFAULT_CIRCUIT;
  const stage = (name: string, primary: StageConfig) =>
    new FailoverClient(
      name,
      stageProviders(primary, transport, () => new CircuitBreaker(circuit, options.now)),
      options.observer,
      options.log,
    );
  const clients = {
    stt: stage('stt', config.stt),
    llm: stage('llm', config.llm),
    tts: stage('tts', config.tts),
  };
  options.observer?.watchCircuits(() => [
    ...clients.stt.circuits(),
    ...clients.llm.circuits(),
    ...clients.tts.circuits(),
  ]);
  return clients;
}

/** A stage's provider and its fallbacks, named uniquely (given names first, then hosts). */
function stageProviders(
  primary: StageConfig,
  transport: UpstreamTransport,
  breaker: () => CircuitBreaker,
): FailoverProvider[] {
  const { fallbacks = [], ...own } = primary;
  const stages: (StageConfig & { overrides?: FailoverProvider['overrides'] })[] = [
    own,
    ...fallbacks.map(({ model, voice, ...fallback }) => ({
      ...fallback,
      // Timeouts and retries are the stage's unless given; the key is only the fallback's own.
      model: model ?? own.model,
      timeoutMs: fallback.timeoutMs ?? own.timeoutMs,
      maxRetries: fallback.maxRetries ?? own.maxRetries,
      ...((fallback.firstByteTimeoutMs ?? own.firstByteTimeoutMs)
        ? { firstByteTimeoutMs: fallback.firstByteTimeoutMs ?? own.firstByteTimeoutMs }
        : {}),
      ...(model || voice
        ? { overrides: { ...(model ? { model } : {}), ...(voice ? { voice } : {}) } }
        : {}),
    })),
  ];
  const taken = new Set(stages.flatMap((s) => (s.name ? [s.name] : [])));
  return stages.map((s) => {
    let name = s.name;
    if (!name) {
      const host = providerName(s.baseURL);
      name = host;
      for (let n = 2; taken.has(name); n++) name = `${host}-${n}`;
      taken.add(name);
    }
    return {
      name,
      client: new UpstreamClient(s, transport),
      once: new UpstreamClient({ ...s, maxRetries: 0 }, transport),
      ...(s.firstByteTimeoutMs !== undefined ? { firstByteTimeoutMs: s.firstByteTimeoutMs } : {}),
      ...(s.overrides ? { overrides: s.overrides } : {}),
      circuit: breaker(),
    };
  });
}
