// A model server for the real runtime, on 127.0.0.1: OpenAI-compatible chat
// completions (streamed or not), offline. Every call is recorded with its
// tag (the `[kl …]` mark the harness puts in each invocation's prompt) and
// when it started and ended, so overlapping model calls on one session, the
// visible sign of two writers in one transcript, can be counted. A tag can
// be held: its calls get no answer until released, which keeps that
// invocation inside its model call, holding the session lock, as long as a
// scenario needs.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One chat completion request. */
export interface ModelCall {
  tag: string | null;
  startedAt: number;
  /** When the answer was sent or the client went away; null while open. */
  endedAt: number | null;
  outcome: 'answered' | 'client-gone' | null;
}

/** What the mock answers. */
export const MOCK_REPLY = 'mock reply';

const TAG = /\[kl ([^\]\s]+)\]/;

function lastUserText(body: unknown): string {
  const messages = (body as { messages?: Array<{ role?: string; content?: unknown }> })?.messages ?? [];
  const user = [...messages].reverse().find((m) => m.role === 'user');
  const content = user?.content;
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((part) => (part as { text?: string })?.text ?? '').join(' ');
  return '';
}

function answer(res: ServerResponse, body: { model?: string; stream?: boolean }): void {
  const created = Math.floor(Date.now() / 1000);
  const usage = { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 };
  if (!body.stream) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        id: 'kl-mock',
        object: 'chat.completion',
        created,
        model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content: MOCK_REPLY }, finish_reason: 'stop' }],
        usage,
      }),
    );
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const base = { id: 'kl-mock', object: 'chat.completion.chunk', created, model: body.model };
  const event = (data: unknown): string => `data: ${JSON.stringify(data)}\n\n`;
  res.write(
    event({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: MOCK_REPLY }, finish_reason: null }] }),
  );
  res.write(event({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage }));
  res.end('data: [DONE]\n\n');
}

/** The mock model server. */
export class MockModel {
  readonly calls: ModelCall[] = [];
  readonly #server: Server;
  readonly #held = new Set<string>();
  readonly #parked = new Map<string, Array<() => void>>();
  readonly #listeners = new Set<() => void>();

  private constructor(server: Server) {
    this.#server = server;
  }

  /** Starts a server on 127.0.0.1 and a free port. */
  static async start(): Promise<MockModel> {
    let model: MockModel | undefined;
    const server = createServer((req, res) => void model!.#handle(req, res));
    model = new MockModel(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return model;
  }

  /** The provider's baseUrl. */
  get baseUrl(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/v1`;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    if (req.method === 'GET' && req.url?.endsWith('/models')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'mock-1', object: 'model' }] }));
      return;
    }
    let body: { model?: string; stream?: boolean } = {};
    try {
      body = JSON.parse(raw) as typeof body;
    } catch {
      // answered all the same
    }
    const tag = TAG.exec(lastUserText(body))?.[1] ?? null;
    const call: ModelCall = { tag, startedAt: Date.now(), endedAt: null, outcome: null };
    this.calls.push(call);
    res.once('close', () => {
      if (call.endedAt === null) {
        call.endedAt = Date.now();
        call.outcome = 'client-gone';
      }
    });
    this.#notify();
    if (tag !== null && this.#held.has(tag)) {
      await new Promise<void>((resolve) => {
        const parked = this.#parked.get(tag) ?? [];
        parked.push(resolve);
        this.#parked.set(tag, parked);
        res.once('close', resolve);
      });
    }
    if (res.destroyed || res.writableEnded) return;
    call.endedAt = Date.now();
    call.outcome = 'answered';
    answer(res, body);
    this.#notify();
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  /** Calls tagged `tag` wait for release(tag) before they are answered. */
  hold(tag: string): void {
    this.#held.add(tag);
  }

  /** Answers the held calls of `tag`, and any later ones at once. */
  release(tag: string): void {
    this.#held.delete(tag);
    for (const resolve of this.#parked.get(tag) ?? []) resolve();
    this.#parked.delete(tag);
  }

  /** Resolves with the first call tagged `tag`; rejects after `timeoutMs` or when `abandon` resolves first. */
  waitForCall(tag: string, timeoutMs: number, abandon?: Promise<unknown>): Promise<ModelCall> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const call = this.calls.find((c) => c.tag === tag);
        if (call === undefined) return false;
        done();
        resolve(call);
        return true;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no model call tagged ${tag} within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (): void => void check();
      const done = (): void => {
        clearTimeout(timer);
        this.#listeners.delete(listener);
      };
      if (check()) return;
      this.#listeners.add(listener);
      void abandon?.then(() => {
        if (!check()) {
          done();
          reject(new Error(`the invocation tagged ${tag} ended before calling the model`));
        }
      });
    });
  }

  /** Calls whose tag starts with `prefix`. */
  callsOf(prefix: string): ModelCall[] {
    return this.calls.filter((c) => c.tag?.startsWith(prefix));
  }

  /** Stops the server, answering nothing more. */
  async close(): Promise<void> {
    for (const tag of [...this.#parked.keys()]) this.release(tag);
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Pairs of calls that were open at the same time (an open call counts as open until now). */
export function overlappingCalls(calls: readonly ModelCall[]): number {
  let pairs = 0;
  const now = Date.now();
  for (let i = 0; i < calls.length; i++) {
    for (let j = i + 1; j < calls.length; j++) {
      const a = calls[i]!;
      const b = calls[j]!;
      if (a.startedAt < (b.endedAt ?? now) && b.startedAt < (a.endedAt ?? now)) pairs++;
    }
  }
  return pairs;
}
