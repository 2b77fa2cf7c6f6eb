import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * The script-tag build of `@voice-bot/widget` (its `dist/browser/`), when that package is
 * installed beside the relay — an optional peer: the relay never imports browser code, it only
 * serves these files at `/widget/`.
 */
export function widgetAssetsDir(): string | undefined {
  try {
    const entry = createRequire(import.meta.url).resolve('@voice-bot/widget'); // …/dist/index.js
    const dir = join(dirname(entry), 'browser');
    return existsSync(join(dir, 'voice-bot.js')) ? dir : undefined;
  } catch {
    return undefined;
  }
}
