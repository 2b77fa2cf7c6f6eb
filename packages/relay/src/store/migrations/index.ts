/**
 * Every migration, in order. Names sort in the order they run; a released migration never
 * changes — later ones (conversation records, knowledge documents, a webhook outbox) are added
 * as new modules here.
 */
import type { Migration } from 'kysely';
import type { Engine } from '../database.js';
import { initial } from './001_initial.js';
import { speculativeUsage } from './002_speculative_usage.js';
import { knowledge } from './003_knowledge.js';
import { records } from './004_records.js';
import { webhooks } from './005_webhooks.js';
import { visitorSecrets } from './006_visitor_secrets.js';
import { conversationUser } from './007_conversation_user.js';
import { consoleSessions } from './008_console_sessions.js';

export function migrations(engine: Engine): Record<string, Migration> {
  return {
    '001_initial': initial(engine),
    '002_speculative_usage': speculativeUsage(),
    '003_knowledge': knowledge(engine),
    '004_records': records(engine),
    '005_webhooks': webhooks(),
    '006_visitor_secrets': visitorSecrets(),
    '007_conversation_user': conversationUser(),
    '008_console_sessions': consoleSessions(),
  };
}
