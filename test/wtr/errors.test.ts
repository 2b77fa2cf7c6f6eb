/**
 * Errors a UI explains: microphone failures, and a run-time file that does not load
 * (`assets_unavailable`, naming the URL), as the AudioEngine reports it in Chromium.
 */
import { AudioEngine } from '../../packages/sdk/src/audio/engine.js';
import { VoiceBotError, assetError, micError } from '../../packages/sdk/src/errors.js';
import { describeError } from '../../packages/widget/src/error-help.js';
import { EXTRA_STRINGS_EN } from '../../packages/widget/src/extras.js';
import { loadStrings } from '../../packages/widget/src/i18n.js';
import { equal, match, mockRelay, msw, ok, rejection } from './support.js';

const { http, HttpResponse } = msw;
const handlers = {
  onFrame: () => undefined,
  onPlayed: () => undefined,
  onDrained: () => undefined,
};

describe('errors', () => {
  before(async () => {
    await mockRelay();
  });
  afterEach(async () => (await mockRelay()).resetHandlers());

  it('getUserMedia failures map to codes a UI can explain', () => {
    const cases: [string, string][] = [
      ['NotAllowedError', 'mic_permission_denied'],
      ['SecurityError', 'mic_permission_denied'],
      ['NotFoundError', 'mic_not_found'],
      ['OverconstrainedError', 'mic_not_found'],
      ['NotReadableError', 'mic_unavailable'],
      ['AbortError', 'mic_unavailable'],
      ['SomethingElse', 'mic_unavailable'],
    ];
    for (const [name, code] of cases) {
      const error = micError(new DOMException('x', name));
      equal(error.code, code, name);
      ok(error instanceof VoiceBotError && error.options.cause instanceof DOMException);
    }
  });

  it('a worklet that is not there: start fails with assets_unavailable naming the URL (HTTP 404)', async () => {
    const error = (await rejection(
      AudioEngine.open({ assetBaseUrl: '/no-such-folder/', mic: false, handlers }),
    )) as VoiceBotError;
    ok(error instanceof VoiceBotError, String(error));
    equal(error.code, 'assets_unavailable');
    equal(error.url, `${location.origin}/no-such-folder/worklets/playback-processor.js`);
    match(error.message, /playback-processor\.js: HTTP 404/);
  });

  it('the default worklet URLs are the self-contained files beside the module (built into dist/audio/worklets/)', async () => {
    const engine = await AudioEngine.open({
      assetBaseUrl: '/packages/sdk/dist/audio/',
      mic: false,
      handlers,
    });
    equal(engine.context.state, 'running');
    await engine.close();
  });

  it('what assetError says: a missing file, an HTML page in its place, a file that would not load, no answer', async () => {
    const base = 'http://assets.test/sdk';
    (await mockRelay()).use(
      http.get(`${base}/missing.js`, () => new HttpResponse('not found', { status: 404 })),
      http.get(
        `${base}/fallback.js`,
        () =>
          new HttpResponse('<!doctype html><title>app</title>', {
            headers: { 'content-type': 'text/html' },
          }),
      ),
      http.get(
        `${base}/broken.js`,
        () => new HttpResponse('syntax error(', { headers: { 'content-type': 'text/javascript' } }),
      ),
      http.get(`${base}/offline.js`, () => HttpResponse.error()),
    );
    const cause = new DOMException('Unable to load a worklet', 'AbortError');
    const say = async (file: string) =>
      (await assetError(`${base}/${file}`, 'its worklet', cause)).message;
    match(
      await say('missing.js'),
      /could not load its worklet from http:\/\/assets\.test\/sdk\/missing\.js: HTTP 404/,
    );
    match(await say('fallback.js'), /answered with an HTML page \(text\/html\).*is it missing/);
    match(
      await say('broken.js'),
      /was found \(text\/javascript\) but could not be loaded: Unable to load a worklet/,
    );
    match(
      await say('offline.js'),
      /could not be fetched \(network, CORS or Content-Security-Policy\)/,
    );
    const error = await assetError(`${base}/missing.js`, 'its worklet', cause);
    equal(error.code, 'assets_unavailable');
    equal(error.fatal, false, 'start() makes it fatal when it reports it');
    equal(error.url, `${base}/missing.js`);
  });

  it('the widget explains assets_unavailable in every UI language, with a hint for the site owner', async () => {
    for (const language of ['en', 'es', 'hi'] as const) {
      // The error area's strings load with it (the extras chunk), English as the base.
      const strings = { ...EXTRA_STRINGS_EN, ...(await loadStrings(language)) };
      const help = describeError('assets_unavailable', strings);
      equal(help.kind, 'setup', language);
      equal(help.typeInstead, true);
      ok(help.text.length > 20 && help.text !== strings.generic, `${language}: ${help.text}`);
      ok(help.help && help.help.length > 20, `${language}: owner hint`);
    }
  });
});
