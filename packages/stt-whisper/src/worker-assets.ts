/**
 * Where the speech-recognition worker gets its files: model files from the self-hosted model base
 * (or the hub, when allowed) and onnxruntime's wasm from its URL, both kept in the Cache API so the
 * next visit downloads neither. Imported by the worker only.
 */
import { env } from '@huggingface/transformers';
import { CACHE_NAME } from './cache-name.js';

interface OrtWasmFlags {
  wasmPaths?: unknown;
  wasmBinary?: ArrayBuffer;
}
const ort = env.backends.onnx as { wasm?: OrtWasmFlags; versions?: { web?: string } };

/** The Cache Storage bucket, or none (disabled, an insecure context, or storage refused). */
export async function openCache(enabled: boolean): Promise<Cache | undefined> {
  if (!enabled || typeof caches === 'undefined') return undefined;
  return caches.open(CACHE_NAME).catch(() => undefined);
}

/** Bytes of one file received so far; `total` is 0 while unknown. */
export type OnFileBytes = (url: string, loaded: number, total: number) => void;

/**
 * Counts a response's body as it is read. `Content-Length` is the size on the wire, which a
 * compressed response exceeds once decoded, so the total never falls below what has arrived.
 */
function counted(response: Response, url: string, onBytes: OnFileBytes): Response {
  if (!response.ok || !response.body) return response;
  const length = Number(response.headers.get('content-length')) || 0;
  let loaded = 0;
  const body = response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        loaded += chunk.byteLength;
        onBytes(url, loaded, Math.max(length, loaded));
        controller.enqueue(chunk);
      },
      flush() {
        onBytes(url, loaded, loaded);
      },
    }),
  );
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

/**
 * Points transformers.js at the model base. It probes optional files (`preprocessor_config.json`)
 * only under a local path that is not a full URL, so the base goes over as a path, and every fetch
 * and cache key resolves against the base instead: a worker started from a `blob:` shim (the
 * cross-origin case) has no URL of its own that a path could resolve against. Download progress
 * is counted here, not with transformers.js' `progress_callback`, which first fetches every file
 * once more only to learn its size.
 */
export function useModelBase(
  base: URL,
  allowRemoteModels: boolean,
  cache: Cache | undefined,
  onBytes: OnFileBytes,
): void {
  const absolute = (url: string | URL): string => new URL(url, base).href;
  env.allowLocalModels = true;
  env.localModelPath = base.pathname;
  env.allowRemoteModels = allowRemoteModels;
  env.fetch = async (input: string | URL, init?: RequestInit) => {
    const url = absolute(input);
    return counted(await fetch(url, init), url, onBytes);
  };
  env.useBrowserCache = false;
  env.useCustomCache = cache !== undefined;
  env.customCache = cache
    ? {
        match: (key: string) => cache.match(absolute(key)),
        put: (key: string, response: Response) => cache.put(absolute(key), response),
      }
    : null;
}

/**
 * Gives onnxruntime its wasm as bytes, from the cache or else the network (then cached). The cache
 * key carries the runtime's version, so an upgraded bundle never runs an older binary. The `.mjs`
 * glue still loads from its URL: transformers.js' own wasm cache is turned off, as it would turn the
 * glue into a `blob:` module (which a strict CSP refuses); with one thread onnxruntime imports it
 * as it is.
 */
export async function useWasm(
  paths: { mjs: string; wasm: string },
  cache: Cache | undefined,
): Promise<void> {
  const flags = ort.wasm;
  if (!flags) return;
  env.useWasmCache = false;
  flags.wasmPaths = { mjs: paths.mjs, wasm: paths.wasm };
  const url = paths.wasm;
  const key = `${url}${url.includes('?') ? '&' : '?'}ort=${ort.versions?.web ?? env.version}`;
  const cached = await cache?.match(key);
  if (cached) {
    flags.wasmBinary = await cached.arrayBuffer();
    return;
  }
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not fetch ${url} (HTTP ${response.status})`);
  const bytes = await response.arrayBuffer();
  // A full quota only costs the next visit a download.
  await cache
    ?.put(key, new Response(bytes, { headers: { 'content-type': 'application/wasm' } }))
    .catch(() => undefined);
  flags.wasmBinary = bytes;
}

/** Once the runtime has compiled the wasm it no longer needs the bytes. */
export function releaseWasmBytes(): void {
  if (ort.wasm) delete ort.wasm.wasmBinary;
}
