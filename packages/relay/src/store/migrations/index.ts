/**
 * Every migration, in order. Names sort in the order they run; a released migration never
 * changes — later ones (conversation records, knowledge documents, a webhook outbox) are added
 * as new modules here.
 */
import type { Migration } from 'kysely';
import type { Engine } from '../database.js';
import { initial } from './001_initial.js';
import { speculativeUsage } from './002_speculative_usage.js';

export function migrations(engine: Engine): Record<string, Migration> {
  return {
    '001_initial': initial(engine),
    '002_speculative_usage': speculativeUsage(),
  };
}
