import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/**
 * Structured JSON logs. Audio never reaches a log call; secrets are redacted by path as a second
 * line of defence (keys, tokens and provider keys must not be passed in the first place).
 */
export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.VOICEBOT_LOG_LEVEL ?? 'info',
      base: { service: 'voicebot-relay' },
      redact: {
        paths: ['key', 'secret', 'token', 'apiKey', 'authorization', '*.key', '*.secret', '*.token', '*.apiKey', '*.authorization', 'headers.authorization'],
        censor: '[redacted]',
      },
    },
    options.destination,
  );
}
