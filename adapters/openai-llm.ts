import OpenAI, {
  APIConnectionError,
  APIError,
  APIUserAbortError,
  AuthenticationError,
  PermissionDeniedError,
  RateLimitError,
} from 'openai'
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions'
import type { ResponseInputItem } from 'openai/resources/responses/responses'
import {
  type FinishReason,
  type Llm,
  LlmError,
  type LlmMessage,
  type LlmRequest,
  type LlmStreamEvent,
  type LlmToolCall,
  type LlmUsage,
} from './llm.ts'

export type OpenAiLlmOptions = {
  /** OPENAI_BASE_URL: OpenAI's, or any OpenAI-compatible server's (vLLM, Ollama, llama.cpp), ending in /v1. */
  readonly baseUrl?: string
  /** OPENAI_API_KEY; local servers take any. */
  readonly apiKey?: string
  /** Chat Completions (what every compatible server speaks) or OpenAI's Responses API. */
  readonly api?: 'chat' | 'responses'
  /** Retries of a 429 or 5xx before the first byte, each after the server's retry-after when it sends one. Default 3. */
  readonly maxRetries?: number
  /** Per attempt. Default 120 s. */
  readonly timeoutMs?: number
}

/** The LLM port over the official SDK: its retries honour `retry-after`/`retry-after-ms`; aborting tears the request down. */
export function openAiLlm(options: OpenAiLlmOptions): Llm {
  const client = new OpenAI({
    baseURL: options.baseUrl ?? null,
    apiKey: options.apiKey ?? 'not-needed',
    maxRetries: options.maxRetries ?? 3,
    timeout: options.timeoutMs ?? 120_000,
  })
  const api = options.api ?? 'chat'
  const stream = api === 'responses' ? responsesStream : chatStream
  return {
    api,
    async *stream(request) {
      try {
        yield* stream(client, request)
      } catch (e) {
        throw toLlmError(e, request.signal)
      }
    },
  }
}

/** Chat Completions, streamed: tool-call arguments arrive in pieces by index and are yielded once whole. */
async function* chatStream(client: OpenAI, request: LlmRequest): AsyncGenerator<LlmStreamEvent> {
  const chunks = await untilAborted(
    client.chat.completions.create(
      {
        model: request.model,
        messages: request.messages.map(toChatMessage),
        stream: true,
        stream_options: { include_usage: true },
        ...(request.tools?.length
          ? {
              tools: request.tools.map((t) => ({
                type: 'function' as const,
                function: { name: t.name, description: t.description, parameters: { ...t.parameters } },
              })),
            }
          : {}),
        ...(request.reasoningEffort ? { reasoning_effort: request.reasoningEffort } : {}),
        ...(request.maxOutputTokens ? { max_completion_tokens: request.maxOutputTokens } : {}),
      },
      request.signal ? { signal: request.signal } : {},
    ),
    request.signal,
  )
  const calls = new Map<number, { id: string; name: string; arguments: string }>()
  let finishReason: FinishReason = 'stop'
  let usage: LlmUsage | null = null
  for await (const chunk of chunks) {
    if (chunk.usage) {
      usage = {
        inputTokens: chunk.usage.prompt_tokens,
        cachedInputTokens: chunk.usage.prompt_tokens_details?.cached_tokens ?? 0,
        outputTokens: chunk.usage.completion_tokens,
      }
    }
    const choice = chunk.choices[0]
    if (!choice) continue
    // vLLM and Ollama stream a reasoning model's thinking beside the content, under one of these names.
    const delta = choice.delta as typeof choice.delta & { reasoning_content?: string | null; reasoning?: string | null }
    const reasoning = delta.reasoning_content ?? delta.reasoning
    if (reasoning) yield { type: 'reasoning', delta: reasoning }
    if (delta.content) yield { type: 'text', delta: delta.content }
    for (const piece of delta.tool_calls ?? []) {
      const call = calls.get(piece.index) ?? { id: '', name: '', arguments: '' }
      if (piece.id) call.id = piece.id
      if (piece.function?.name) call.name += piece.function.name
      if (piece.function?.arguments) call.arguments += piece.function.arguments
      calls.set(piece.index, call)
    }
    if (choice.finish_reason) finishReason = finishOf(choice.finish_reason)
  }
  throwIfAborted(request.signal)
  for (const [index, call] of [...calls].sort(([a], [b]) => a - b)) {
    yield { type: 'tool_call', call: { ...call, id: call.id || `call_${index}` } }
  }
  if (calls.size > 0 && finishReason === 'stop') finishReason = 'tool_calls'
  yield { type: 'done', finishReason, usage }
}

const finishOf = (reason: string): FinishReason =>
  reason === 'length' || reason === 'content_filter' || reason === 'tool_calls'
    ? reason
    : reason === 'function_call'
      ? 'tool_calls'
      : 'stop'

const toChatMessage = (m: LlmMessage): ChatCompletionMessageParam => {
  switch (m.role) {
    case 'system':
    case 'user':
      return { role: m.role, content: m.content }
    case 'assistant':
      return {
        role: 'assistant',
        content: m.content,
        ...(m.toolCalls?.length
          ? {
              tool_calls: m.toolCalls.map((c) => ({
                id: c.id,
                type: 'function' as const,
                function: { name: c.name, arguments: c.arguments },
              })),
            }
          : {}),
      }
    case 'tool':
      return { role: 'tool', tool_call_id: m.toolCallId, content: m.content }
  }
}

/** The Responses API, streamed (stateless: `store: false`, the whole conversation sent each time). */
async function* responsesStream(client: OpenAI, request: LlmRequest): AsyncGenerator<LlmStreamEvent> {
  const events = await untilAborted(
    client.responses.create(
      {
        model: request.model,
        input: request.messages.flatMap(toResponseItems),
        stream: true,
        store: false,
        ...(request.tools?.length
          ? {
              tools: request.tools.map((t) => ({
                type: 'function' as const,
                name: t.name,
                description: t.description,
                parameters: { ...t.parameters },
                strict: false,
              })),
            }
          : {}),
        ...(request.reasoningEffort ? { reasoning: { effort: request.reasoningEffort, summary: 'auto' as const } } : {}),
        ...(request.maxOutputTokens ? { max_output_tokens: request.maxOutputTokens } : {}),
      },
      request.signal ? { signal: request.signal } : {},
    ),
    request.signal,
  )
  let calls = 0
  for await (const event of events) {
    switch (event.type) {
      case 'response.output_text.delta':
        yield { type: 'text', delta: event.delta }
        break
      case 'response.reasoning_summary_text.delta':
        yield { type: 'reasoning', delta: event.delta }
        break
      case 'response.output_item.done':
        if (event.item.type === 'function_call') {
          calls++
          const call: LlmToolCall = { id: event.item.call_id, name: event.item.name, arguments: event.item.arguments }
          yield { type: 'tool_call', call }
        }
        break
      case 'response.completed':
      case 'response.incomplete': {
        const u = event.response.usage
        const reason = event.response.incomplete_details?.reason
        yield {
          type: 'done',
          finishReason:
            reason === 'max_output_tokens'
              ? 'length'
              : reason === 'content_filter'
                ? 'content_filter'
                : calls > 0
                  ? 'tool_calls'
                  : 'stop',
          usage: u
            ? {
                inputTokens: u.input_tokens,
                cachedInputTokens: u.input_tokens_details?.cached_tokens ?? 0,
                outputTokens: u.output_tokens,
              }
            : null,
        }
        return
      }
      case 'response.failed':
        throw new LlmError('unavailable', event.response.error?.message ?? 'the response failed')
      case 'error':
        throw new LlmError('unavailable', event.message)
    }
  }
  throwIfAborted(request.signal)
  throw new LlmError('unavailable', 'the stream ended before the response completed')
}

/** The SDK's streams end quietly when their request is aborted: a cancelled call must not read as a whole answer. */
const throwIfAborted = (signal: AbortSignal | undefined) => {
  if (signal?.aborted) throw new LlmError('aborted', 'the model call was cancelled')
}

const toResponseItems = (m: LlmMessage): ResponseInputItem[] => {
  switch (m.role) {
    case 'system':
    case 'user':
      return [{ role: m.role, content: m.content }]
    case 'assistant':
      return [
        ...(m.content ? [{ role: 'assistant' as const, content: m.content }] : []),
        ...(m.toolCalls ?? []).map((c) => ({
          type: 'function_call' as const,
          call_id: c.id,
          name: c.name,
          arguments: c.arguments,
        })),
      ]
    case 'tool':
      return [{ type: 'function_call_output', call_id: m.toolCallId, output: m.content }]
  }
}

/**
 * The SDK waits out a retry-after without looking at the signal: a cancel must not wait that long, so the wait
 * for the response's first byte ends as soon as the signal aborts (the SDK's request then finds it aborted).
 */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise
  if (signal.aborted) return Promise.reject(new APIUserAbortError())
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new APIUserAbortError())
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (e) => {
        signal.removeEventListener('abort', onAbort)
        reject(e)
      },
    )
  })
}

function toLlmError(e: unknown, signal: AbortSignal | undefined): unknown {
  if (e instanceof LlmError && !signal?.aborted) return e
  if (e instanceof APIUserAbortError || signal?.aborted) return new LlmError('aborted', 'the model call was cancelled')
  if (e instanceof RateLimitError) return new LlmError('rate_limited', e.message, 429)
  if (e instanceof AuthenticationError || e instanceof PermissionDeniedError)
    return new LlmError('unauthorized', e.message, e.status)
  if (e instanceof APIConnectionError) return new LlmError('unavailable', e.message)
  if (e instanceof APIError) {
    const status = e.status
    return status !== undefined && status < 500
      ? new LlmError('refused', e.message, status)
      : new LlmError('unavailable', e.message, status)
  }
  return e
}
