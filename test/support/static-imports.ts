/**
 * The static-import graph of built (possibly minified) ES modules: what a browser fetches up front
 * for a module, before anything it reaches only through `import()`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** Relative module specifiers a (minified) ES module imports statically. */
export function staticImports(source: string): string[] {
  const out = new Set<string>();
  const re =
    /(?:^|[;}\n])\s*(?:import|export)\s*(?:[\w$*{}\s,]+?\s*from\s*)?["'](\.{1,2}\/[^"']+)["']/g;
  for (let m = re.exec(source); m; m = re.exec(source)) out.add(m[1] as string);
  return [...out];
}

/** The file and everything it imports statically, transitively. */
export function staticClosure(entry: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file) || !existsSync(file)) return;
    seen.add(file);
    for (const spec of staticImports(readFileSync(file, 'utf8')))
      visit(resolve(dirname(file), spec));
  };
  visit(entry);
  return [...seen];
}
