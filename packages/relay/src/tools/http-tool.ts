import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { assertLiteralAllowed, guardedLookup, type AddressPolicy } from './ssrf.js';
import { renderTemplate } from './template.js';
import { ToolError, type JsonSchema, type ToolDefinition } from './types.js';

/** An integration tool declared in `voicebot.config.json`: the relay calls an HTTP API for the model. */
export interface HttpToolConfig {
  name: string;
  description: string;
  parameters: JsonSchema;
  http: {
    method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
    /** URL template: `{{args.x}}` and `{{metadata.y}}` are URL-encoded; `{{env.NAME}}` (e.g. a base URL) is not. */
    url: string;
    /** Header templates; only these may read `{{env.NAME}}`, so secrets stay in the environment. */
    headers?: Record<string, string>;
    /** `args` (default for non-GET) sends the arguments as JSON; a string is a JSON template. */
    body?: 'args' | string;
    timeoutMs?: number;
    maxResponseBytes?: number;
  };
  /** Conversation metadata to set from the response: `{"customer.first_name": "{{response.data.first_name}}"}`. */
  metadata?: Record<string, string>;
  /** A fixed reply template for the model instead of the raw response: `"Open {{response.hours}}"`. */
  reply?: string;
  public?: boolean;
}

const DEFAULT_TIMEOUT_MS = 8_000;
const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024;
const MAX_REDIRECTS = 3;
/** What the model sees of a non-JSON body. */
const MAX_TEXT_FOR_MODEL = 4_000;

interface FetchedResponse {
  status: number;
  contentType: string;
  body: Buffer;
}

function send(
  url: URL,
  init: { method: string; headers: Record<string, string>; body: string | undefined; maxBytes: number; policy: AddressPolicy; signal: AbortSignal },
  redirects = 0,
): Promise<FetchedResponse> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.reject(new ToolError(`unsupported URL scheme ${url.protocol}`));
  try {
    assertLiteralAllowed(url.hostname, init.policy);
  } catch (error) {
    return Promise.reject(new ToolError(`refused: ${(error as Error).message}`));
  }
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: init.method, headers: init.headers, lookup: guardedLookup(init.policy) as never, signal: init.signal },
      (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        if (status >= 300 && status < 400 && location) {
          res.resume();
          if (redirects >= MAX_REDIRECTS) return reject(new ToolError('too many redirects'));
          const next = new URL(location, url);
          const keepBody = status === 307 || status === 308;
          resolve(send(next, { ...init, method: keepBody ? init.method : 'GET', body: keepBody ? init.body : undefined }, redirects + 1));
          return;
        }
        const declared = Number(res.headers['content-length'] ?? 0);
        if (declared > init.maxBytes) {
          res.destroy();
          return reject(new ToolError(`response too large (${declared} bytes; limit ${init.maxBytes})`));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.byteLength;
          if (size > init.maxBytes) {
            res.destroy();
            reject(new ToolError(`response too large (over ${init.maxBytes} bytes)`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => resolve({ status, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.name === 'BlockedAddressError' || error.code === 'EBLOCKED') reject(new ToolError(`refused: ${error.message}`));
      else reject(error);
    });
    if (init.body !== undefined) req.end(init.body);
    else req.end();
  });
}

function parseBody(response: FetchedResponse): unknown {
  const text = response.body.toString('utf8');
  if (/json/i.test(response.contentType) || /^\s*[[{]/.test(text)) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // fall through: treat as text
    }
  }
  return text.length > MAX_TEXT_FOR_MODEL ? `${text.slice(0, MAX_TEXT_FOR_MODEL)}…` : text;
}

export function createHttpTool(config: HttpToolConfig, policy: AddressPolicy, env: Record<string, string | undefined> = process.env): ToolDefinition {
  const method = config.http.method ?? 'GET';
  return {
    name: config.name,
    description: config.description,
    parameters: config.parameters,
    timeoutMs: config.http.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    ...(config.public ? { public: true } : {}),
    async execute(args, context): Promise<unknown> {
      const data = { args, metadata: context.metadata };
      const withEnv = config.http.url.replace(/\{\{\s*env\.(\w+)\s*\}\}/g, (_match, name: string) => env[name] ?? '');
      const url = new URL(renderTemplate(withEnv, data, encodeURIComponent));
      const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'voicebot-relay' };
      for (const [name, template] of Object.entries(config.http.headers ?? {})) headers[name] = renderTemplate(template, { ...data, env });
      let body: string | undefined;
      const bodySpec = config.http.body ?? (method === 'GET' || method === 'DELETE' ? undefined : 'args');
      if (bodySpec === 'args') body = JSON.stringify(args);
      else if (bodySpec !== undefined) body = renderTemplate(bodySpec, data, (v) => JSON.stringify(v).slice(1, -1));
      if (body !== undefined) headers['content-type'] ??= 'application/json';
      const response = await send(url, {
        method,
        headers,
        body,
        maxBytes: config.http.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
        policy,
        signal: context.signal,
      });
      if (response.status < 200 || response.status >= 300) throw new ToolError(`the service answered HTTP ${response.status}`);
      const parsed = parseBody(response);
      const view = { ...data, response: parsed };
      const metadata: Record<string, string> = {};
      for (const [key, template] of Object.entries(config.metadata ?? {})) metadata[key] = renderTemplate(template, view);
      if (Object.keys(metadata).length > 0) context.setMetadata(metadata);
      return config.reply ? renderTemplate(config.reply, view) : parsed;
    },
  };
}
