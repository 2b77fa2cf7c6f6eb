/**
 * The README's "Worked example: the demo clinic, end to end", followed step by step so it cannot
 * silently rot: `voicebot-relay serve --demo --config demo/voicebot.helpdesk.config.json` (run from
 * source, with the offline demo provider) and `demo/webhook-receiver.mjs` as the helpdesk, then a
 * visitor's socket: a grounded answer citing the parking page, a handoff (card message + signed
 * `handoff.requested` at the receiver), the record through the admin API (redacted, with the
 * feedback) and, once the visitor has left, `conversation.ended` with the analysis.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT, TalkClient, connectTalk, createSession } from './support/relay.js';

const ADMIN_TOKEN = 'worked-example-admin-0123456789';
const SECRET = 'worked-example-hook-secret-0123';
const PHONE = '0612 345 678';

interface ReceivedEvent {
  type: string;
  timestamp: string;
  data: Record<string, unknown>;
}

/** A child process's stdout, kept whole, with a wait for what it prints. */
class Output {
  text = '';
  private waiters: (() => void)[] = [];

  constructor(child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.text += chunk;
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  async waitFor<T>(find: (text: string) => T | undefined, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = find(this.text);
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; the process printed:\n${this.text}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/** The events the receiver printed as verified: a header line, then the event as JSON. */
function verifiedEvents(text: string): ReceivedEvent[] {
  const events: ReceivedEvent[] = [];
  for (const block of text.split('\nreceived ').slice(1)) {
    const [header = '', ...rest] = block.split('\n');
    if (!header.endsWith('signature verified)')) continue;
    try {
      events.push(JSON.parse(rest.join('\n').split('\n\n')[0] ?? '') as ReceivedEvent);
    } catch {
      // not printed completely yet
    }
  }
  return events;
}

/** A config section: the helpdesk config without what it adds to the zero-setup one. */
function withoutWebhooks(config: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(config) as {
    bots: { handoff: { targets: Record<string, unknown> } }[];
    webhooks?: unknown;
    limits?: unknown;
  };
  delete copy.webhooks;
  delete copy.limits;
  for (const bot of copy.bots) delete bot.handoff.targets['webhook'];
  return copy as unknown as Record<string, unknown>;
}

const noSpace = (code: string): string => code.replace(/\s+/g, '');

describe('the README worked example: the demo clinic, end to end', () => {
  let dir = '';
  let receiver: ChildProcess | undefined;
  let relay: ChildProcess | undefined;
  let received: Output;
  let hooksUrl = '';
  let url = '';
  let origin = '';
  let client: TalkClient;
  let conversationId = '';
  let parkingTurn = 0;

  const admin = async (path: string): Promise<Record<string, unknown>> => {
    const res = await fetch(`${url}${path}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    assert.equal(res.status, 200, `${path}: ${res.status}`);
    return (await res.json()) as Record<string, unknown>;
  };

  const say = async (text: string) => {
    const from = client.messages.length;
    client.send({ type: 'text', text });
    return { done: await client.next('done', () => true, { from, timeoutMs: 10_000 }), from };
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'voicebot-worked-'));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      VOICEBOT_DATA_DIR: join(dir, 'data'),
      VOICEBOT_ADMIN_TOKEN: ADMIN_TOKEN,
      DEMO_WEBHOOK_SECRET: SECRET,
    };
    for (const name of Object.keys(env))
      if (/^(OPENAI_|VOICEBOT_(STT|LLM|TTS|EMBEDDINGS)_|DATABASE_URL|REDIS_URL)/.test(name))
        delete env[name];

    // Terminal 1: the helpdesk (port 0 here instead of the README's 8788).
    receiver = spawn(process.execPath, [join(REPO_ROOT, 'demo/webhook-receiver.mjs'), '0'], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    received = new Output(receiver);
    hooksUrl = await received.waitFor(
      (text) => /listening on (http:\/\/127\.0\.0\.1:\d+\/hooks)/.exec(text)?.[1],
      10_000,
    );

    // Terminal 2: the relay with the helpdesk config, its webhook pointed at that port and the
    // conversation ending a second after the visitor leaves (instead of a minute).
    const config = JSON.parse(
      await readFile(join(REPO_ROOT, 'demo/voicebot.helpdesk.config.json'), 'utf8'),
    ) as { webhooks: { url: string }[]; limits: { conversationTtlMs: number } };
    assert.equal(config.webhooks[0]?.url, 'http://127.0.0.1:8788/hooks');
    (config.webhooks[0] as { url: string }).url = hooksUrl;
    config.limits.conversationTtlMs = 1_000;
    const configFile = join(dir, 'voicebot.helpdesk.config.json');
    await writeFile(configFile, JSON.stringify(config));
    relay = spawn(
      process.execPath,
      [
        '--conditions=source',
        '--import',
        'tsx',
        join(REPO_ROOT, 'packages/relay/src/cli/cli.ts'),
        'serve',
        '--demo',
        '--config',
        configFile,
        '--port',
        '0',
      ],
      { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: relay.stdout as NodeJS.ReadableStream });
    const shown = await new Promise<string>((resolve, reject) => {
      relay?.once('exit', (code) => reject(new Error(`relay exited with ${code}`)));
      lines.on('line', (line) => {
        if (!line.startsWith('{')) return;
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'relay listening' && entry.url) resolve(entry.url);
      });
    });
    origin = shown;
    url = shown.replace('localhost', '127.0.0.1');

    // The page's way in: the demo key from /demo-config.json, a session, a text socket.
    const { key } = (await (await fetch(`${url}/demo-config.json`)).json()) as { key: string };
    const session = await createSession(url, { key, origin });
    assert.equal(session.status, 201, JSON.stringify(session.body));
    const talk = await connectTalk(session.body.ws_url as string, session.body.token, origin);
    assert.ok(talk instanceof TalkClient);
    client = talk;
    client.start({ input: 'text', output: 'text' });
    const ready = await client.next('ready', () => true, { timeoutMs: 10_000 });
    conversationId = ready.conversation_id;
    assert.ok(ready.features?.includes('feedback'), 'the demo bot takes feedback');
    assert.ok(ready.features?.includes('handoff'));
  });

  after(async () => {
    client?.close();
    relay?.kill('SIGTERM');
    receiver?.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  });

  test('the helpdesk config is the zero-setup demo config plus the webhook; the receiver checks signatures with the README snippet', async () => {
    const read = async (name: string) =>
      JSON.parse(await readFile(join(REPO_ROOT, 'demo', name), 'utf8')) as Record<string, unknown>;
    const plain = await read('voicebot.config.json');
    const helpdesk = await read('voicebot.helpdesk.config.json');
    assert.equal(plain['webhooks'], undefined, 'npm start needs no webhook secret');
    assert.deepEqual(withoutWebhooks(helpdesk), plain);

    const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
    const section = readme.split('### Worked example: the demo clinic, end to end')[1] ?? '';
    for (const step of [
      'node demo/webhook-receiver.mjs',
      'http://127.0.0.1:8788/hooks',
      'npx voicebot-relay serve --demo --config demo/voicebot.helpdesk.config.json',
      '/admin/conversations?bot=front-desk&handoff=true',
    ])
      assert.ok(section.includes(step), `the README's worked example says ${step}`);
    const snippet =
      /<!-- webhook-verify -->\n```js\n[\s\S]*?(export function verifyWebhook[\s\S]*?\n\})\n```/.exec(
        readme,
      )?.[1];
    const script = await readFile(join(REPO_ROOT, 'demo/webhook-receiver.mjs'), 'utf8');
    const own = /(export function verifyWebhook[\s\S]*?\n\})\n/.exec(script)?.[1];
    assert.ok(snippet && own);
    assert.equal(noSpace(own), noSpace(snippet));

    // A request signed with another secret is refused.
    const body = JSON.stringify({ type: 'handoff.requested', timestamp: '', data: {} });
    const stamp = String(Math.floor(Date.now() / 1000));
    const forged = createHmac('sha256', 'not-the-secret-0123456789')
      .update(`msg_forged.${stamp}.${body}`)
      .digest('base64');
    const res = await fetch(hooksUrl, {
      method: 'POST',
      headers: {
        'webhook-id': 'msg_forged',
        'webhook-timestamp': stamp,
        'webhook-signature': `v1,${forged}`,
      },
      body,
    });
    assert.equal(res.status, 401);
  });

  test('(a) "Where can I park?": the answer comes from the parking page and links to it', async () => {
    const { done, from } = await say('Where can I park?');
    const parking = `${origin}/clinic/parking.html`;
    assert.match(done.text, /park for free behind the clinic/);
    assert.ok(done.text.includes(parking), done.text);
    const tools = client.messages.slice(from).filter((m) => m.type === 'tool');
    assert.ok(tools.some((m) => m.name === 'search_knowledge' && m.state === 'done'));
    parkingTurn = done.turn_id;
    client.send({ type: 'feedback', turn_id: parkingTurn, rating: 'up' });
  });

  test('(b) asking for a person: the handoff card, and a signed handoff.requested at the receiver', async () => {
    const { done, from } = await say(`Can I talk to a person? Please call me on ${PHONE}.`);
    const handoff = client.messages.slice(from).find((m) => m.type === 'handoff');
    assert.ok(handoff?.type === 'handoff');
    assert.equal(handoff.turn_id, done.turn_id);
    assert.deepEqual(handoff.targets, {
      phone: '+1 555 0100',
      email: 'frontdesk@acme-dental.example',
      chat_url: 'http://localhost:8787/#contact',
    });
    assert.equal('contact' in handoff, false, "the page never gets the visitor's contact details");

    const event = await received.waitFor(
      (text) => verifiedEvents(text).find((e) => e.type === 'handoff.requested'),
      10_000,
    );
    assert.equal(event.data['conversation_id'], conversationId);
    assert.equal(event.data['reason'], 'asked for a person');
    assert.deepEqual(event.data['contact'], { phone: PHONE });
  });

  test('(c) the admin API shows the conversation: its turns, redacted, with the feedback', async () => {
    let detail: Record<string, unknown> = {};
    const deadline = Date.now() + 10_000;
    for (;;) {
      detail = await admin(`/admin/conversations/${conversationId}`);
      const fed = (detail['feedback'] as { up?: number } | null)?.up === 1;
      if ((fed && detail['turn_count'] === 3) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const list = await admin('/admin/conversations?bot=front-desk&handoff=true&feedback=up');
    const ids = (list['conversations'] as { id: string }[]).map((c) => c.id);
    assert.deepEqual(ids, [conversationId]);

    const turns = detail['turns'] as {
      turn_id: number;
      user: string;
      assistant: string;
      tools: { name: string; args: Record<string, unknown> }[];
      feedback: { rating: string } | null;
    }[];
    // The greeting (a turn without the visitor), then the visitor's two.
    assert.equal(turns.length, 3);
    const [greeting, park, person] = turns;
    assert.equal(greeting?.user, null);
    assert.match(greeting?.assistant ?? '', /Acme Dental assistant/);
    assert.equal(park?.turn_id, parkingTurn);
    assert.equal(park?.user, 'Where can I park?');
    assert.ok(park?.assistant.includes('/clinic/parking.html'));
    assert.equal(park?.tools[0]?.name, 'search_knowledge');
    assert.equal(park?.feedback?.rating, 'up');
    // Redacted before it was stored: the text, and the handoff's arguments.
    assert.equal(person?.user, 'Can I talk to a person? Please call me on [phone].');
    assert.equal(person?.tools[0]?.name, 'handoff');
    assert.deepEqual(person?.tools[0]?.args['contact'], { phone: '[phone]' });
    assert.ok(!JSON.stringify(detail).includes(PHONE));

    const deliveries = await admin('/admin/webhooks/deliveries?event=handoff.requested');
    const [delivery] = deliveries['deliveries'] as { status: string; last_status: number }[];
    assert.equal(delivery?.status, 'delivered');
    assert.equal(delivery?.last_status, 204);
  });

  test('when the visitor leaves, conversation.ended brings the analysis', async () => {
    client.close();
    await client.closed;
    // The relay looks for ended conversations every 15 s.
    const event = await received.waitFor(
      (text) => verifiedEvents(text).find((e) => e.type === 'conversation.ended'),
      25_000,
    );
    assert.equal(event.data['conversation_id'], conversationId);
    assert.equal(event.data['summary'], 'Where can I park?');
    assert.equal(event.data['handoff'], true);
    const record = await admin(`/admin/conversations/${conversationId}`);
    assert.equal(record['status'], 'ended');
    assert.equal(record['summary'], 'Where can I park?');
  });
});
