/**
 * Packages the relay loads only when its configuration uses them: PostgreSQL or SQLite drivers,
 * Redis, the HTML parsers of the knowledge base, the JSON Schema validator of tools. A module once
 * loaded stays in the heap for the life of the process, and every garbage collection marks it.
 * Each is resolved from the relay's own package, like a static import.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** A package the configuration needs is not installed. */
export class MissingDependencyError extends Error {
  override readonly name = 'MissingDependencyError';
  readonly code = 'missing_dependency';

  constructor(
    readonly packageName: string,
    purpose: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${purpose} needs the npm package ${packageName}, which is not installed (npm install ${packageName})`,
      options,
    );
  }
}

const codeOf = (error: unknown): unknown => (error as { code?: unknown } | null)?.code;

/** Whether `packageName` is installed where the relay resolves its packages. */
function installed(packageName: string): boolean {
  try {
    require.resolve(`${packageName}/package.json`);
    return true;
  } catch (error) {
    return codeOf(error) === 'ERR_PACKAGE_PATH_NOT_EXPORTED';
  }
}

/** `error` as a {@link MissingDependencyError} when `packageName` itself is what was not found. */
function missing(error: unknown, packageName: string, purpose: string): unknown {
  const code = codeOf(error);
  const message = error instanceof Error ? error.message : '';
  const notFound = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
  const names = message.includes(`'${packageName}'`) || message.includes(`'${packageName}/`);
  return notFound && names && !installed(packageName)
    ? new MissingDependencyError(packageName, purpose, { cause: error })
    : error;
}

/**
 * Runs `load` (a dynamic `import()` of `packageName`, written out by the caller so that it keeps
 * its types); a package that is not installed rejects with a {@link MissingDependencyError}.
 */
export async function importOptional<T>(
  packageName: string,
  purpose: string,
  load: () => Promise<T>,
): Promise<T> {
  try {
    return await load();
  } catch (error) {
    throw missing(error, packageName, purpose);
  }
}

/**
 * `require(specifier)` of a CommonJS module of `packageName`, for the synchronous places that
 * load one on first use (a module path inside a package loads only that part of it).
 */
export function requireOptional<T>(specifier: string, packageName: string, purpose: string): T {
  try {
    return require(specifier) as T;
  } catch (error) {
    throw missing(error, packageName, purpose);
  }
}
