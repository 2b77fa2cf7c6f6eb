/**
 * The built-in `handoff` tool: the model calls it when the visitor asks for a person (or the
 * conversation calls for one). The page gets a `handoff` message (the widget shows a card, the page
 * may open its own live chat), the owner's helpdesk a signed `handoff.requested` webhook, and the
 * model a result telling it what happens next, so it can tell the visitor.
 */
import { HANDOFF_URGENCIES, type HandoffMessage, type HandoffUrgency } from '@voice-bot/protocol';
import { ConfigError } from '../config/config.js';
import { ToolError, type ToolContext, type ToolDefinition } from '../tools/types.js';
import type { WebhookSink } from '../webhooks/outbox.js';

export const HANDOFF_TOOL_NAME = 'handoff';

export interface HandoffTargets {
  /** Send a `handoff.requested` webhook (to the endpoints configured for it) with the summary and contact details. */
  webhook?: boolean;
  /** A number the visitor can call, e.g. `+1 555 0100`. */
  phone?: string;
  /** An address the visitor can write to. */
  email?: string;
  /** A live-chat page (https; http only on localhost). */
  chatUrl?: string;
}

export interface HandoffConfig {
  /** When the model should hand off (default {@link DEFAULT_HANDOFF_GUIDANCE}). */
  guidance?: string;
  /** Where the guidance goes: the tool's description (default) or the end of the bot's system prompt. */
  guidanceIn?: 'tool' | 'prompt';
  /** The model asks for the visitor's name and a phone number or email before handing off. */
  requireContact?: boolean;
  targets: HandoffTargets;
  /** What happens next, as the visitor should hear it (default: made from the targets). */
  message?: string;
}

export const DEFAULT_HANDOFF_GUIDANCE =
  'Call handoff when the visitor asks to talk to a person (a human, someone on the team, the ' +
  'receptionist), or when a person should take over: a complaint, an urgent or medical problem, ' +
  'or a request you cannot handle. Do not call it for questions you can answer yourself.';

/** `handoff.requested` webhooks per conversation: a model calling the tool in a loop cannot flood the helpdesk. */
export const MAX_HANDOFF_WEBHOOKS_PER_CONVERSATION = 3;
/** Conversation metadata key counting the webhooks sent (also usable in prompt templates). */
const COUNT_KEY = 'handoff.count';

const LIMITS = { reason: 200, summary: 1000, name: 100, phone: 40, email: 200 } as const;

export type HandoffArgs = {
  reason: string;
  urgency?: HandoffUrgency;
  summary: string;
  contact?: { name?: string; phone?: string; email?: string };
};

const PHONE = /^\+?[\d\s().-]{3,}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** A phone number as a visitor would dial it: digits with spaces, dots, dashes, parentheses, an optional leading `+`. */
export const isPhoneNumber = (value: string): boolean =>
  PHONE.test(value) && value.replace(/\D/g, '').length >= 3 && value.length <= LIMITS.phone;

export const isEmailAddress = (value: string): boolean =>
  EMAIL.test(value) && value.length <= LIMITS.email;

/** A live-chat URL the page may open: https, or http on a loopback host (development). */
export function isChatUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
}

/** The checks `voicebot.config.json` gets (settings.ts), for bots given to `createRelay` in code. */
export function checkHandoffConfig(botId: string, config: HandoffConfig): void {
  const { webhook, phone, email, chatUrl } = config.targets ?? {};
  const problem = !(webhook || phone || email || chatUrl)
    ? 'needs at least one of webhook, phone, email, chatUrl'
    : phone !== undefined && !isPhoneNumber(phone)
      ? `targets.phone ${JSON.stringify(phone)} is not a phone number`
      : email !== undefined && !isEmailAddress(email)
        ? `targets.email ${JSON.stringify(email)} is not an email address`
        : chatUrl !== undefined && !isChatUrl(chatUrl)
          ? `targets.chatUrl must be an https URL (http only on localhost)`
          : undefined;
  if (problem) throw new ConfigError(`bot ${botId}: handoff ${problem}`);
}

/** The guidance text the bot uses, and where it goes. */
export function handoffGuidance(config: HandoffConfig): { text: string; inPrompt: boolean } {
  return {
    text: config.guidance?.trim() || DEFAULT_HANDOFF_GUIDANCE,
    inPrompt: config.guidanceIn === 'prompt',
  };
}

/** The bot's system prompt with the handoff guidance appended, when the config puts it there. */
export function promptWithHandoff(systemPrompt: string, config: HandoffConfig | undefined): string {
  if (!config) return systemPrompt;
  const guidance = handoffGuidance(config);
  return guidance.inPrompt ? `${systemPrompt}\n\n${guidance.text}` : systemPrompt;
}

/** "What happens next", from the configured targets, for the model to tell the visitor. */
export function nextSteps(config: HandoffConfig, contact: HandoffArgs['contact']): string {
  if (config.message?.trim()) return config.message.trim();
  const { webhook, phone, email, chatUrl } = config.targets;
  const steps: string[] = [];
  if (webhook)
    steps.push(
      contact?.phone || contact?.email
        ? 'The team has been notified and will contact the visitor with the details given.'
        : 'The team has been notified with a summary of this conversation.',
    );
  const ways = [
    phone ? `call ${phone}` : undefined,
    email ? `email ${email}` : undefined,
    chatUrl ? 'continue in live chat (a button is on the screen)' : undefined,
  ].filter((way): way is string => way !== undefined);
  if (ways.length > 0)
    steps.push(
      `To reach a person now, the visitor can ${ways.length > 1 ? `${ways.slice(0, -1).join(', ')} or ${ways.at(-1) ?? ''}` : ways[0]}.`,
    );
  return steps.join(' ') || 'A person from the team will take over.';
}

function clean(text: string | undefined, max: number): string | undefined {
  const value = text?.replace(/\s+/g, ' ').trim();
  return value ? value.slice(0, max) : undefined;
}

/** The contact details the model gave, cleaned; a malformed phone number or address is left out. */
function cleanContact(contact: HandoffArgs['contact']): NonNullable<HandoffArgs['contact']> {
  const name = clean(contact?.name, LIMITS.name);
  const phone = clean(contact?.phone, LIMITS.phone);
  const email = clean(contact?.email, LIMITS.email);
  return {
    ...(name ? { name } : {}),
    ...(phone && isPhoneNumber(phone) ? { phone } : {}),
    ...(email && isEmailAddress(email) ? { email } : {}),
  };
}

/** The `targets` of the page's `handoff` message (what the visitor can use: no webhook there). */
function pageTargets(targets: HandoffTargets): HandoffMessage['targets'] {
  return {
    ...(targets.phone ? { phone: targets.phone } : {}),
    ...(targets.email ? { email: targets.email } : {}),
    ...(targets.chatUrl ? { chat_url: targets.chatUrl } : {}),
  };
}

/**
 * The `handoff` tool of one bot. `webhooks` receives `handoff.requested` when the config's
 * `targets.webhook` is on.
 */
export function createHandoffTool(
  botId: string,
  config: HandoffConfig,
  webhooks: WebhookSink,
): ToolDefinition<HandoffArgs> {
  checkHandoffConfig(botId, config);
  const guidance = handoffGuidance(config);
  const description =
    'Hands the conversation over to a person from the team: the page shows the visitor how to reach them' +
    (config.targets.webhook ? ' and the team gets a summary' : '') +
    '. The result says what happens next: tell the visitor in one or two sentences.' +
    (config.requireContact
      ? " Include the visitor's name and a phone number or email address in contact; if you do not have them, ask first."
      : '') +
    (guidance.inPrompt ? '' : ` ${guidance.text}`);
  return {
    name: HANDOFF_TOOL_NAME,
    description,
    parameters: {
      type: 'object',
      additionalProperties: false,
      required: ['reason', 'summary'],
      properties: {
        reason: {
          type: 'string',
          maxLength: LIMITS.reason,
          description: 'Why a person should take over, in a few words (e.g. "asked for a person").',
        },
        urgency: {
          type: 'string',
          enum: [...HANDOFF_URGENCIES],
          description: 'high: needs a person now; low: whenever convenient. Default normal.',
        },
        summary: {
          type: 'string',
          maxLength: LIMITS.summary,
          description:
            'One or two sentences for the person taking over: who the visitor is and what they need.',
        },
        contact: {
          type: 'object',
          additionalProperties: false,
          description: 'How the team can reach the visitor, as the visitor said it.',
          properties: {
            name: { type: 'string', maxLength: LIMITS.name },
            phone: { type: 'string', maxLength: LIMITS.phone },
            email: { type: 'string', maxLength: LIMITS.email },
          },
        },
      },
    },
    async execute(args: HandoffArgs, context: ToolContext) {
      const contact = cleanContact(args.contact);
      if (config.requireContact && !contact.phone && !contact.email)
        return {
          status: 'contact_needed',
          instruction:
            'Not handed off yet. Ask the visitor for their name and a phone number or email address ' +
            'so the team can reach them, then call handoff again with contact filled in.',
        };
      const reason = clean(args.reason, LIMITS.reason) ?? 'the visitor asked for a person';
      const summary = clean(args.summary, LIMITS.summary) ?? reason;
      const urgency = args.urgency ?? 'normal';
      const next = nextSteps(config, contact);
      let teamNotified = false;
      if (config.targets.webhook) {
        const sent = Number(context.metadata[COUNT_KEY] ?? 0);
        if (sent < MAX_HANDOFF_WEBHOOKS_PER_CONVERSATION) {
          try {
            await webhooks.enqueue('handoff.requested', botId, {
              conversation_id: context.conversationId,
              reason,
              urgency,
              summary,
              ...(Object.keys(contact).length > 0 ? { contact } : {}),
              metadata: { ...context.metadata },
            });
            teamNotified = true;
            context.setMetadata({ [COUNT_KEY]: sent + 1 });
          } catch {
            const { phone, email, chatUrl } = config.targets;
            if (!phone && !email && !chatUrl)
              throw new ToolError(
                'the team could not be notified; apologise and suggest trying again later',
              );
          }
        } else {
          teamNotified = true; // it was, by an earlier call: no new webhook
        }
      }
      const message: HandoffMessage = {
        type: 'handoff',
        turn_id: context.turnId,
        reason,
        urgency,
        summary,
        targets: pageTargets(config.targets),
        ...(config.message?.trim() ? { message: config.message.trim() } : {}),
      };
      context.notify(message);
      return {
        status: 'handed_off',
        next:
          config.targets.webhook && !teamNotified
            ? `The team could not be notified automatically. ${nextSteps({ targets: { ...config.targets, webhook: false } }, contact)}`
            : next,
        instruction:
          'Tell the visitor briefly and warmly what happens next. Do not invent other options.',
      };
    },
  };
}
