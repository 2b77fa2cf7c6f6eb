/**
 * The admin console's browser entry: registers `<vb-console>` and its screens. The relay serves
 * the bundle of this module at `/console/` (packages/relay/src/http/console.ts).
 */
export { ConsoleApp, SCREENS, type ScreenId } from './app.js';
export { ApiError, ConsoleApi, CSRF_HEADER } from './api.js';
