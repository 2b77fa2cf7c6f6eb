import type { Ajv, Options } from 'ajv';
import { requireOptional } from '../dependencies.js';

/**
 * A JSON Schema validator. ajv is loaded by the first one made: a relay whose bots have no tools
 * and no `extract` fields never loads it.
 */
export function createAjv(options: Options): Ajv {
  const ajv = requireOptional<typeof import('ajv')>('ajv', 'ajv', 'JSON Schema validation');
  return new ajv.Ajv(options);
}
