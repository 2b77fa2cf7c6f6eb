import type { Redis } from 'ioredis';

/** A Lua script run by its SHA (ioredis sends the source once when Redis does not know it). */
export type Script = (
  keys: readonly string[],
  args: readonly (string | number)[],
) => Promise<unknown>;

type ScriptCommand = (
  numberOfKeys: number,
  ...keysAndArgs: (string | number)[]
) => Promise<unknown>;

/** Registers `lua` on `client` under `name`. */
export function defineScript(client: Redis, name: string, lua: string): Script {
  client.defineCommand(name, { lua });
  const command = (client as unknown as Record<string, ScriptCommand>)[name];
  if (typeof command !== 'function') throw new Error(`ioredis did not define the script ${name}`);
  return (keys, args) => command.call(client, keys.length, ...keys, ...args);
}

/** Lua: the server's clock in ms, so every relay agrees on what has expired whatever its own clock. */
export const LUA_NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;
