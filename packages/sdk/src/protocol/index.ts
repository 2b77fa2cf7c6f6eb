// The wire protocol lives in its own package, shared with the relay; `@voice-bot/sdk/protocol`
// stays as a re-export for code written against it.
export * from '@voice-bot/protocol';
