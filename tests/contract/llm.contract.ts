import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type Llm, LlmError, type LlmRequest, type LlmStreamEvent } from '../../adapters/llm.ts'
import type { ModelRequest, ModelServer } from '../support/openai-server.ts'

export type LlmFixture = {
  readonly server: ModelServer
  /** The adapter under test, pointed at the server, with at most `maxRetries` retries. */
  llm(options?: { maxRetries?: number }): Llm
  /** The conversation the server received, as role/content pairs, whatever the wire format. */
  conversation(request: ModelRequest): { role: string; content: string }[]
  teardown(): Promise<void>
}

const collect = async (llm: Llm, request: LlmRequest): Promise<LlmStreamEvent[]> => {
  const events: LlmStreamEvent[] = []
  for await (const e of llm.stream(request)) events.push(e)
  return events
}

const failure = async (run: Promise<unknown>): Promise<LlmError> => {
  try {
    await run
  } catch (e) {
    expect(e).toBeInstanceOf(LlmError)
    return e as LlmError
  }
  throw new Error('expected the call to fail')
}

const hello: LlmRequest = { model: 'local-model', messages: [{ role: 'user', content: 'hello' }] }

/** What every LLM adapter does, against a local server speaking the wire format, through the real SDK. */
export function llmContract(name: string, setup: () => Promise<LlmFixture>): void {
  describe(`LLM contract: ${name}`, () => {
    let f: LlmFixture
    beforeAll(async () => {
      f = await setup()
    })
    afterAll(async () => {
      await f?.teardown()
    })
    beforeEach(() => {
      f.server.requests.length = 0
    })

    it('streams the text in deltas, in order, and ends with the usage the server reported', async () => {
      f.server.answer([{ text: 'The build is green again.', usage: { input: 120, cachedInput: 64, output: 7 } }])
      const events = await collect(f.llm(), hello)
      const deltas = events.filter((e) => e.type === 'text').map((e) => (e as { delta: string }).delta)
      expect(deltas.length).toBeGreaterThan(1)
      expect(deltas.join('')).toBe('The build is green again.')
      expect(events.at(-1)).toEqual({
        type: 'done',
        finishReason: 'stop',
        usage: { inputTokens: 120, cachedInputTokens: 64, outputTokens: 7 },
      })
      expect(events.filter((e) => e.type === 'done')).toHaveLength(1)
    })

    it('reassembles tool calls whose arguments arrive in pieces, each whole and in order', async () => {
      f.server.answer([
        {
          toolCalls: [
            { id: 'call_a', name: 'post_message', arguments: { roomId: 'r1', text: 'On it — checking the logs.' } },
            { id: 'call_b', name: 'search_messages', arguments: { query: 'deploy failed' } },
          ],
        },
      ])
      const events = await collect(f.llm(), {
        ...hello,
        tools: [
          { name: 'post_message', description: 'Post', parameters: { type: 'object', properties: { text: { type: 'string' } } } },
          { name: 'search_messages', description: 'Search', parameters: { type: 'object', properties: {} } },
        ],
      })
      expect(events.filter((e) => e.type === 'tool_call')).toEqual([
        {
          type: 'tool_call',
          call: {
            id: 'call_a',
            name: 'post_message',
            arguments: JSON.stringify({ roomId: 'r1', text: 'On it — checking the logs.' }),
          },
        },
        {
          type: 'tool_call',
          call: { id: 'call_b', name: 'search_messages', arguments: JSON.stringify({ query: 'deploy failed' }) },
        },
      ])
      expect(events.at(-1)).toMatchObject({ type: 'done', finishReason: 'tool_calls' })
      const tools = f.server.requests[0]!.body.tools as unknown[]
      expect(tools).toHaveLength(2)
    })

    it('sends the whole conversation, tool calls and their outputs included', async () => {
      f.server.answer([{ text: 'done' }])
      await collect(f.llm(), {
        model: 'local-model',
        messages: [
          { role: 'system', content: 'You are Ada.' },
          { role: 'user', content: 'What failed?' },
          { role: 'assistant', content: null, toolCalls: [{ id: 'call_1', name: 'search', arguments: '{"q":"fail"}' }] },
          { role: 'tool', toolCallId: 'call_1', content: '3 results' },
        ],
      })
      expect(f.conversation(f.server.requests[0]!)).toEqual([
        { role: 'system', content: 'You are Ada.' },
        { role: 'user', content: 'What failed?' },
        { role: 'assistant', content: 'call search {"q":"fail"} call_1' },
        { role: 'tool', content: 'call_1: 3 results' },
      ])
    })

    it('streams reasoning apart from the answer', async () => {
      f.server.answer([{ text: 'Yes.', reasoning: 'The tests passed twice.' }])
      const events = await collect(f.llm(), hello)
      expect(
        events
          .filter((e) => e.type === 'reasoning')
          .map((e) => (e as { delta: string }).delta)
          .join(''),
      ).toBe('The tests passed twice.')
      expect(
        events
          .filter((e) => e.type === 'text')
          .map((e) => (e as { delta: string }).delta)
          .join(''),
      ).toBe('Yes.')
    })

    it('says when the answer was cut at the output limit', async () => {
      f.server.answer([{ text: 'A long answer that', finish: 'length' }])
      const events = await collect(f.llm(), { ...hello, maxOutputTokens: 4 })
      expect(events.at(-1)).toMatchObject({ type: 'done', finishReason: 'length' })
    })

    it('retries a 429 after the retry-after the server asked for, then streams', async () => {
      f.server.answer([{ status: 429, retryAfterSeconds: 1, message: 'slow down' }, { text: 'ok' }])
      const started = performance.now()
      const events = await collect(f.llm({ maxRetries: 2 }), hello)
      expect(performance.now() - started).toBeGreaterThanOrEqual(900)
      expect(f.server.requests).toHaveLength(2)
      expect(events.at(-1)).toMatchObject({ type: 'done', finishReason: 'stop' })
    })

    it('retries a 5xx, and gives up as rate_limited or unavailable when the retries run out', async () => {
      f.server.answer([{ status: 503, retryAfterSeconds: 0 }, { text: 'recovered' }])
      expect((await collect(f.llm({ maxRetries: 1 }), hello)).at(-1)).toMatchObject({ type: 'done' })
      f.server.requests.length = 0
      f.server.answer([{ status: 429, retryAfterSeconds: 0 }])
      const limited = await failure(collect(f.llm({ maxRetries: 1 }), hello))
      expect(limited.kind).toBe('rate_limited')
      expect(f.server.requests).toHaveLength(2)
      f.server.answer([{ status: 500, retryAfterSeconds: 0 }])
      expect((await failure(collect(f.llm({ maxRetries: 0 }), hello))).kind).toBe('unavailable')
    })

    it('does not retry a request the server refused (400), and names it refused', async () => {
      f.server.answer([{ status: 400, message: 'model not found' }])
      const refused = await failure(collect(f.llm({ maxRetries: 3 }), hello))
      expect(refused).toMatchObject({ kind: 'refused', status: 400 })
      expect(refused.message).toContain('model not found')
      expect(f.server.requests).toHaveLength(1)
    })

    it('a cancel mid-stream ends the call at once and closes the request', async () => {
      f.server.answer([{ hold: true, text: 'Looking into it' }])
      const abandonedBefore = f.server.abandoned()
      const controller = new AbortController()
      const seen: LlmStreamEvent[] = []
      const run = (async () => {
        for await (const e of f.llm().stream({ ...hello, signal: controller.signal })) {
          seen.push(e)
          if (e.type === 'text' && !controller.signal.aborted) setTimeout(() => controller.abort(), 10)
        }
      })()
      const error = await failure(run)
      expect(error.kind).toBe('aborted')
      expect(seen.some((e) => e.type === 'text')).toBe(true)
      expect(seen.some((e) => e.type === 'done')).toBe(false)
      const deadline = Date.now() + 5_000
      while (f.server.abandoned() === abandonedBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      expect(f.server.abandoned()).toBe(abandonedBefore + 1)
    })

    it('a cancel while waiting out a long retry-after ends the call within a second', async () => {
      f.server.answer([{ status: 429, retryAfterSeconds: 30 }, { text: 'too late' }])
      const controller = new AbortController()
      const run = collect(f.llm({ maxRetries: 2 }), { ...hello, signal: controller.signal })
      const deadline = Date.now() + 5_000
      while (f.server.requests.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
      const cancelled = performance.now()
      controller.abort()
      expect((await failure(run)).kind).toBe('aborted')
      expect(performance.now() - cancelled).toBeLessThan(1_000)
      expect(f.server.requests).toHaveLength(1)
    })
  })
}
