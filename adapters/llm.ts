/*
 * The language-model port: one streamed call of a model with the conversation so far and the tools it may call.
 * Modelled on what every OpenAI-compatible server speaks (OpenAI, vLLM, Ollama, llama.cpp): text arrives in
 * deltas, a tool call arrives whole once its streamed arguments are complete, and the call ends with why it
 * stopped and the tokens it used. Adapters: Chat Completions and the Responses API (adapters/openai-llm.ts).
 */

export type LlmToolCall = {
  /** The model's id for the call: a tool's output names it. */
  readonly id: string
  readonly name: string
  /** JSON text, as the model wrote it (it may not parse: the caller answers that as the tool's error). */
  readonly arguments: string
}

export type LlmMessage =
  | { readonly role: 'system'; readonly content: string }
  | { readonly role: 'user'; readonly content: string }
  | { readonly role: 'assistant'; readonly content: string | null; readonly toolCalls?: readonly LlmToolCall[] }
  | { readonly role: 'tool'; readonly toolCallId: string; readonly content: string }

export type LlmTool = {
  readonly name: string
  readonly description: string
  /** A JSON Schema object for the arguments. */
  readonly parameters: Readonly<Record<string, unknown>>
}

export type LlmUsage = {
  readonly inputTokens: number
  /** Of the input, how much the provider served from its prompt cache (priced lower). */
  readonly cachedInputTokens: number
  readonly outputTokens: number
}

export type ReasoningEffort = 'low' | 'medium' | 'high'

export type LlmRequest = {
  readonly model: string
  readonly messages: readonly LlmMessage[]
  readonly tools?: readonly LlmTool[]
  readonly reasoningEffort?: ReasoningEffort
  readonly maxOutputTokens?: number
  /** Aborting it ends the call at once: the request is torn down and the stream throws an LlmError 'aborted'. */
  readonly signal?: AbortSignal
}

/** Why the model stopped: `length` and `content_filter` cut its answer short. */
export type FinishReason = 'stop' | 'tool_calls' | 'length' | 'content_filter'

export type LlmStreamEvent =
  | { readonly type: 'text'; readonly delta: string }
  | { readonly type: 'reasoning'; readonly delta: string }
  | { readonly type: 'tool_call'; readonly call: LlmToolCall }
  /** Last, once. Usage is null when the server did not report it. */
  | { readonly type: 'done'; readonly finishReason: FinishReason; readonly usage: LlmUsage | null }

export type LlmErrorKind =
  /** Still refused for its rate after the retries (each waited what the server's retry-after asked). */
  | 'rate_limited'
  /** Unreachable, timed out, or a 5xx after the retries. */
  | 'unavailable'
  /** The server refused the request itself (4xx): a bad model name, a context too long. */
  | 'refused'
  | 'unauthorized'
  | 'aborted'

export class LlmError extends Error {
  override readonly name = 'LlmError'
  readonly kind: LlmErrorKind
  readonly status: number | undefined
  constructor(kind: LlmErrorKind, message: string, status?: number) {
    super(message)
    this.kind = kind
    this.status = status
  }
}

export interface Llm {
  /** Which API the adapter speaks, for logs and run items. */
  readonly api: 'chat' | 'responses'
  /** One model call, streamed. Retries on 429/5xx happen inside, before the first event. */
  stream(request: LlmRequest): AsyncIterable<LlmStreamEvent>
}
