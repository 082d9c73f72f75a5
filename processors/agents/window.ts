import { countTokens as o200k } from 'gpt-tokenizer/encoding/o200k_base'
import type { RunContext } from '../../adapters/agent-runs.ts'
import type { Config } from '../../adapters/config.ts'
import type { LlmMessage, LlmTool } from '../../adapters/llm.ts'

/*
 * The context within the model's window: what a model call sends is counted in tokens and, when it would not fit
 * with room left for the answer, the oldest goes first: the oldest recent messages, then the memory notes (the least
 * like the run's ask first), then the run's own oldest steps. The role prompt, the task, what the run was asked and its
 * latest step are always kept.
 */

/** The longest answer a model call is sized for: the room held back in the window, and what a reservation prices. */
export const MAX_OUTPUT_TOKENS = 4_096

/** The window assumed for a model neither configured nor known here (AGENT_CONTEXT_TOKENS' default). */
export const DEFAULT_CONTEXT_TOKENS = 128_000

/**
 * Windows of models we know, first match wins. Newer gpt-5.x have more than 400k (gpt-5.4: 1.05M); assuming less
 * than a model has only drops history early, assuming more gets the call refused.
 */
const KNOWN_WINDOWS: readonly (readonly [RegExp, number])[] = [
  [/^gpt-5(\.\d+)?-chat/, 128_000],
  [/^gpt-5/, 400_000],
  [/^gpt-4\.1/, 1_047_576],
  [/^gpt-4o/, 128_000],
  [/^(o3|o4-mini)(-|$)/, 200_000],
]

/**
 * A model's window in tokens: the longest AGENT_MODEL_WINDOWS name the model's name starts with (`llama3.1` covers
 * `llama3.1:8b`), else a model we know (a router's `openai/` prefix aside), else AGENT_CONTEXT_TOKENS.
 */
export function modelWindows(config: Pick<Config, 'AGENT_CONTEXT_TOKENS' | 'AGENT_MODEL_WINDOWS'>) {
  const configured = [...config.AGENT_MODEL_WINDOWS].sort(([a], [b]) => b.length - a.length)
  return (model: string): number => {
    const named = configured.find(([name]) => model.startsWith(name))
    if (named) return named[1]
    const bare = model.slice(model.lastIndexOf('/') + 1)
    return KNOWN_WINDOWS.find(([pattern]) => pattern.test(bare))?.[1] ?? config.AGENT_CONTEXT_TOKENS
  }
}

/*
 * Tokens are counted with OpenAI's o200k encoding (other models' tokenizers differ by a few percent). Counting a
 * 200,000-character context takes 15-35 ms here, and every model call of a run counts its whole context again: each
 * text's count is kept (by the text itself) so a step only counts what is new since the last one.
 */
const counted = new Map<string, number>()
const CACHED_TEXTS = 20_000

export function countTokens(text: string): number {
  if (text.length < 16) return text.length === 0 ? 0 : Math.ceil(text.length / 2)
  const known = counted.get(text)
  if (known !== undefined) {
    counted.delete(text)
    counted.set(text, known)
    return known
  }
  const n = o200k(text)
  counted.set(text, n)
  if (counted.size > CACHED_TEXTS) counted.delete(counted.keys().next().value!)
  return n
}

/** A message's framing (role, separators) and a tool call's (its id, type), over their text. */
const PER_MESSAGE = 4
const PER_CALL = 8
/** The reply's priming. */
const PER_REQUEST = 3

export type Counter = (text: string) => number

/** What a message costs in the window, as fitWindow counts it. */
export function messageTokens(m: LlmMessage, count: Counter = countTokens): number {
  let n = PER_MESSAGE + (m.content ? count(m.content) : 0)
  if (m.role === 'assistant') for (const c of m.toolCalls ?? []) n += PER_CALL + count(c.name) + count(c.arguments)
  return n
}

/**
 * The context before the run's own turns, in the parts the window keeps or drops: the system prompt and the task
 * always; notes, the last go first; recent messages, the oldest go first (the port's RunContext).
 */
export type ContextParts = RunContext

/** What a model call reads, as the window counts it: its messages and its tools' definitions. */
export const requestTokens = (messages: readonly LlmMessage[], tools: readonly LlmTool[], count: Counter = countTokens): number =>
  PER_REQUEST + messages.reduce((n, m) => n + messageTokens(m, count), 0) + (tools.length ? count(JSON.stringify(tools)) : 0)

export type WindowOptions = {
  /** The model's window in tokens: what it reads plus what it writes. */
  readonly window: number
  /** The tools the call offers: their definitions take room too. */
  readonly tools?: readonly LlmTool[]
  readonly count?: Counter
}

const notesHeading = 'Notes from similar tasks you closed:'
const recentHeading = (where: string) => `Recent messages in ${where}, oldest first:`
const leftOut = (n: number, what: string) => `(${n} earlier ${what} left out to fit the model’s window)`

/**
 * The messages of a model call: the context's parts, then the run's conversation (its inputs, then its turns: an
 * assistant message and the outputs of its tool calls), fitted into the window with room left for the answer.
 * When the parts always kept do not fit by themselves, they are all that is sent.
 */
export function fitWindow(parts: ContextParts, conversation: readonly LlmMessage[], options: WindowOptions): LlmMessage[] {
  const count = options.count ?? countTokens
  const cost = (m: LlmMessage) => messageTokens(m, count)
  // A line joined into a message costs its own tokens and its newline.
  const line = (text: string) => count(text) + 1
  let room = options.window - MAX_OUTPUT_TOKENS - PER_REQUEST - (options.tools?.length ? count(JSON.stringify(options.tools)) : 0)

  // The run's conversation: its inputs, then turns that each start with a message and end with its tool outputs.
  const inputs: LlmMessage[] = []
  const turns: LlmMessage[][] = []
  for (const m of conversation) {
    if (m.role === 'tool' && turns.length) turns.at(-1)!.push(m)
    else if (m.role === 'user' && turns.length === 0) inputs.push(m)
    else turns.push([m])
  }
  const latest = turns.pop()

  // Kept whatever it costs; the headings are counted as they read with the most that may be left out.
  const system: LlmMessage = { role: 'system', content: parts.system }
  const task: LlmMessage | null = parts.task ? { role: 'user', content: parts.task } : null
  room -= cost(system) + (task ? cost(task) : 0) + inputs.reduce((n, m) => n + cost(m), 0)
  room -= latest ? latest.reduce((n, m) => n + cost(m), 0) : 0
  room -= PER_MESSAGE + line(recentHeading(parts.where)) + line(leftOut(parts.recent.length, 'messages')) + line('(none)')

  // Then, newest first, the run's earlier turns, the notes, the recent messages, while they fit (leaving turns out
  // costs a message that says so: held back with the rest of what is kept).
  const turnsNote = PER_MESSAGE + count(leftOut(turns.length, 'steps of this run'))
  if (turns.length) room -= turnsNote
  let keptTurns = 0
  for (let i = turns.length - 1; i >= 0; i--) {
    const size = turns[i]!.reduce((n, m) => n + cost(m), 0)
    // With the oldest kept, nothing is left out: the room held for saying so is the turn's.
    if (size > room + (i === 0 ? turnsNote : 0)) break
    room -= size
    keptTurns++
  }
  if (turns.length && keptTurns === turns.length) room += turnsNote
  let keptNotes = 0
  for (const note of parts.notes) {
    const size = line(note) + (keptNotes === 0 ? PER_MESSAGE + line(notesHeading) : 0)
    if (size > room) break
    room -= size
    keptNotes++
  }
  let keptLines = 0
  for (let i = parts.recent.length - 1; i >= 0; i--) {
    const size = line(parts.recent[i]!)
    if (size > room) break
    room -= size
    keptLines++
  }

  const notes = parts.notes.slice(0, keptNotes)
  const recent = parts.recent.slice(parts.recent.length - keptLines)
  const droppedLines = parts.recent.length - keptLines
  const droppedTurns = turns.length - keptTurns
  return [
    system,
    ...(task ? [task] : []),
    ...(notes.length ? [{ role: 'user' as const, content: `${notesHeading}\n${notes.join('\n')}` }] : []),
    {
      role: 'user',
      content: [
        recentHeading(parts.where),
        ...(droppedLines ? [leftOut(droppedLines, 'messages')] : []),
        ...(recent.length ? recent : ['(none)']),
      ].join('\n'),
    },
    ...inputs,
    ...(droppedTurns ? [{ role: 'user' as const, content: leftOut(droppedTurns, 'steps of this run') }] : []),
    ...turns.slice(droppedTurns).flat(),
    ...(latest ?? []),
  ]
}
