export * from './messages.js';
export * from './errors.js';
export * from './codec.js';
export * from './heard.js';
export * from './session-api.js';
