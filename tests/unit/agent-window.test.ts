import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../adapters/config.ts'
import type { LlmMessage } from '../../adapters/llm.ts'
import {
  type ContextParts,
  type Counter,
  countTokens,
  fitWindow,
  MAX_OUTPUT_TOKENS,
  messageTokens,
  modelWindows,
} from '../../processors/agents/window.ts'

/** A character a token: exact sums, so a property can say what fits. */
const chars: Counter = (text) => text.length
/** What a request costs as fitWindow counts it, before the answer. */
const cost = (messages: readonly LlmMessage[], count: Counter = chars) =>
  3 + messages.reduce((n, m) => n + messageTokens(m, count), 0)

const parts = (extra: Partial<ContextParts> = {}): ContextParts => ({
  system: 'You are Ada, an AI agent.',
  task: null,
  notes: [],
  where: '#ops',
  recent: [],
  ...extra,
})

/** A turn: the assistant's words and calls, then each call's output. */
const turn = (n: number, calls = 1, size = 10): LlmMessage[] => [
  {
    role: 'assistant',
    content: `step ${n}`,
    toolCalls: Array.from({ length: calls }, (_, c) => ({ id: `c${n}.${c}`, name: 'read_messages', arguments: '{}' })),
  },
  ...Array.from({ length: calls }, (_, c) => ({ role: 'tool' as const, toolCallId: `c${n}.${c}`, content: 'x'.repeat(size) })),
]

const contentOf = (messages: readonly LlmMessage[]) => messages.map((m) => m.content ?? '').join('\n')

describe('a model’s window', () => {
  const windows = modelWindows(
    loadConfig({ AGENT_CONTEXT_TOKENS: '32768', AGENT_MODEL_WINDOWS: 'llama3=8192, llama3.1=131072,gpt-4o=64000' }),
  )

  it('is the configured one, by the longest name the model’s starts with', () => {
    expect(windows('llama3.1:8b')).toBe(131_072)
    expect(windows('llama3:70b')).toBe(8_192)
    expect(windows('gpt-4o-mini')).toBe(64_000)
  })

  it('else a model we know, whatever router prefixes it; else AGENT_CONTEXT_TOKENS', () => {
    expect(windows('gpt-4.1-mini')).toBe(1_047_576)
    expect(windows('openai/gpt-5-mini')).toBe(400_000)
    expect(windows('gpt-5.1-chat-latest')).toBe(128_000)
    expect(windows('o4-mini')).toBe(200_000)
    expect(windows('o3')).toBe(200_000)
    expect(windows('qwen2.5:32b')).toBe(32_768)
    expect(modelWindows(loadConfig({}))('qwen2.5:32b')).toBe(128_000)
  })

  it('is configured with clear errors', () => {
    expect(() => loadConfig({ AGENT_MODEL_WINDOWS: 'llama3.1' })).toThrow(
      /AGENT_MODEL_WINDOWS: expected model=tokens.*"llama3.1"/,
    )
    expect(() => loadConfig({ AGENT_MODEL_WINDOWS: 'llama3.1=131k' })).toThrow(/AGENT_MODEL_WINDOWS/)
    expect(() => loadConfig({ AGENT_MODEL_WINDOWS: 'tiny=1000' })).toThrow(/AGENT_MODEL_WINDOWS.*8192/)
    expect(() => loadConfig({ AGENT_CONTEXT_TOKENS: '4096' })).toThrow(/AGENT_CONTEXT_TOKENS/)
    expect(() => loadConfig({ AGENT_CONTEXT_TOKENS: 'lots' })).toThrow(/AGENT_CONTEXT_TOKENS/)
    expect(loadConfig({}).AGENT_MODEL_WINDOWS).toEqual([])
  })
})

describe('counting tokens', () => {
  it('counts with o200k, and a text counted again costs no time', () => {
    expect(countTokens('hello world, this is a test')).toBe(7)
    const long = Array.from({ length: 4_000 }, (_, i) => `[2026-12-01 10:00] @user${i % 7}: the build ${i} is green`).join('\n')
    expect(long.length).toBeGreaterThan(150_000)
    const n = countTokens(long)
    expect(n).toBeGreaterThan(long.length / 8)
    expect(n).toBeLessThan(long.length / 2)
    const started = performance.now()
    for (let i = 0; i < 100; i++) countTokens(long)
    expect(performance.now() - started).toBeLessThan(50)
  })
})

describe('fitting the context into the window', () => {
  it('keeps everything that fits, in order', () => {
    const conversation: LlmMessage[] = [{ role: 'user', content: 'is the build green?' }, ...turn(0), ...turn(1)]
    const p = parts({
      task: 'The task you work on: ship it',
      notes: ['- a note'],
      recent: ['[10:00] @bo: hi', '[10:01] @al: yo'],
    })
    const messages = fitWindow(p, conversation, { window: 100_000 })
    expect(messages).toEqual([
      { role: 'system', content: p.system },
      { role: 'user', content: p.task },
      { role: 'user', content: 'Notes from similar tasks you closed:\n- a note' },
      { role: 'user', content: 'Recent messages in #ops, oldest first:\n[10:00] @bo: hi\n[10:01] @al: yo' },
      ...conversation,
    ])
  })

  it('drops the oldest recent messages first, then notes, then the run’s oldest steps, and says so', () => {
    const recent = Array.from({ length: 20 }, (_, i) => `[10:${String(i).padStart(2, '0')}] @bo: message ${i} ${'.'.repeat(40)}`)
    const notes = ['- best note', '- second note']
    const conversation: LlmMessage[] = [{ role: 'user', content: 'go' }, ...turn(0, 1, 200), ...turn(1, 1, 200), ...turn(2)]
    const all = fitWindow(parts({ recent, notes }), conversation, { window: 1e6, count: chars })
    const full = cost(all)
    const at = (room: number) =>
      fitWindow(parts({ recent, notes }), conversation, { window: MAX_OUTPUT_TOKENS + room, count: chars })

    const fewer = at(full - 200)
    expect(contentOf(fewer)).not.toContain('message 0 ')
    expect(contentOf(fewer)).toContain('message 19 ')
    expect(contentOf(fewer)).toMatch(/\(\d+ earlier messages left out to fit the model’s window\)/)
    expect(contentOf(fewer)).toContain('second note')
    expect(fewer.filter((m) => m.role === 'tool')).toHaveLength(3)

    // What is held back for saying what was left out (~70 characters) leaves no room for a line here.
    const noLines = at(full - recent.join('\n').length + 80)
    expect(contentOf(noLines)).not.toContain('message 19 ')
    expect(contentOf(noLines)).toContain('best note')
    expect(noLines.filter((m) => m.role === 'tool')).toHaveLength(3)

    const oneTurnLess = at(full - recent.join('\n').length - 150)
    expect(contentOf(oneTurnLess)).not.toContain('Notes from')
    expect(oneTurnLess.filter((m) => m.role === 'tool').map((m) => (m as { toolCallId: string }).toolCallId)).toEqual([
      'c1.0',
      'c2.0',
    ])
    expect(oneTurnLess).toContainEqual({
      role: 'user',
      content: '(1 earlier steps of this run left out to fit the model’s window)',
    })
    expect(cost(oneTurnLess)).toBeLessThanOrEqual(full - recent.join('\n').length - 150)

    const nothingSpare = at(0)
    expect(nothingSpare.map((m) => m.role)).toEqual(['system', 'user', 'user', 'user', 'assistant', 'tool'])
    expect(nothingSpare.at(-1)).toMatchObject({ role: 'tool', toolCallId: 'c2.0' })
  })

  it('counts the tools offered and the room for the answer, with the real tokenizer', () => {
    const recent = Array.from({ length: 400 }, (_, i) => `[10:00] @bo: message ${i} about the deploy of service ${i * 7}`)
    const tools = [{ name: 'read_messages', description: 'Reads the room. '.repeat(50), parameters: { type: 'object' } }]
    const messages = fitWindow(parts({ recent }), [{ role: 'user', content: 'go' }], { window: 8_192, tools })
    const sent = cost(messages, countTokens) + countTokens(JSON.stringify(tools))
    expect(sent).toBeLessThanOrEqual(8_192 - MAX_OUTPUT_TOKENS)
    expect(sent).toBeGreaterThan(8_192 - MAX_OUTPUT_TOKENS - 50)
    expect(contentOf(messages)).toContain('message 399 ')
    expect(contentOf(messages)).not.toContain('message 0 ')
  })

  const line = fc.string({ minLength: 1, maxLength: 60 }).map((s) => s.replace(/\n/g, ' '))
  const scenario = fc.record({
    system: line,
    task: fc.option(line, { nil: null }),
    notes: fc.array(line, { maxLength: 5 }),
    recent: fc.array(line, { maxLength: 30 }),
    inputs: fc.array(line, { minLength: 1, maxLength: 3 }),
    turns: fc.array(fc.record({ calls: fc.integer({ min: 0, max: 3 }), size: fc.integer({ min: 0, max: 120 }) }), {
      maxLength: 8,
    }),
    room: fc.integer({ min: 0, max: 3_000 }),
  })

  it('always fits when what is always kept fits; keeps order, pairs calls with outputs, keeps the newest', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const p = parts({ system: s.system, task: s.task, notes: s.notes, recent: s.recent })
        const conversation: LlmMessage[] = [
          ...s.inputs.map((content) => ({ role: 'user' as const, content })),
          ...s.turns.flatMap((t, i) => turn(i, t.calls, t.size)),
        ]
        const window = MAX_OUTPUT_TOKENS + s.room
        const messages = fitWindow(p, conversation, { window, count: chars })
        const kept = fitWindow(p, conversation, { window: 0, count: chars })

        // Fits whenever what is always kept (with what says the rest was left out) does.
        if (cost(kept) <= s.room) expect(cost(messages)).toBeLessThanOrEqual(s.room)
        // The system prompt, the task, the inputs and the latest turn are always there.
        expect(messages[0]).toEqual({ role: 'system', content: s.system })
        if (s.task) expect(messages[1]).toEqual({ role: 'user', content: s.task })
        for (const input of s.inputs) expect(messages).toContainEqual({ role: 'user', content: input })
        const latest = conversation.slice(conversation.findLastIndex((m) => m.role === 'assistant'))
        if (s.turns.length) expect(messages.slice(-latest.length)).toEqual(latest)

        // The run's messages kept are a suffix of its turns, in order, each call with its outputs.
        const ownTurns = conversation.slice(s.inputs.length)
        const sentTurns = messages.filter((m) => m.role === 'assistant' || m.role === 'tool')
        expect(ownTurns.slice(ownTurns.length - sentTurns.length)).toEqual(sentTurns)
        const called = sentTurns.flatMap((m) => (m.role === 'assistant' ? (m.toolCalls ?? []).map((c) => c.id) : []))
        const answered = sentTurns.flatMap((m) => (m.role === 'tool' ? [m.toolCallId] : []))
        expect(answered).toEqual(called)

        // Recent messages kept are the newest, in order; notes kept are the first.
        const recentBlock = messages
          .find((m) => m.content?.startsWith('Recent messages in'))!
          .content!.split('\n')
          .slice(1)
        const lines = recentBlock.filter((l) => !/^\(\d+ earlier messages left out/.test(l) && l !== '(none)')
        expect(s.recent.slice(s.recent.length - lines.length)).toEqual(lines)
        if (lines.length < s.recent.length) expect(recentBlock[0]).toMatch(/earlier messages left out/)
        const notesBlock =
          messages
            .find((m) => m.content?.startsWith('Notes from'))
            ?.content?.split('\n')
            .slice(1) ?? []
        expect(s.notes.slice(0, notesBlock.length)).toEqual(notesBlock)
      }),
      { numRuns: 500 },
    )
  })
})
