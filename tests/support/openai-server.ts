import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/*
 * A local OpenAI-compatible model server that speaks the real wire formats, for the real SDK to talk to over a
 * socket: Chat Completions (`data:` chunks, tool-call arguments streamed in pieces by index, usage in a last chunk
 * with no choices, `data: [DONE]`) and the Responses API (named SSE events with sequence numbers, ending in
 * `response.completed` or `response.incomplete` with usage), errors as OpenAI's JSON error bodies with
 * `retry-after`. What it answers is scripted per test.
 */

export type ModelUsage = { input: number; cachedInput: number; output: number }

export type ModelAnswer =
  /** Streamed text, in `pieces` deltas (default: a delta per word). */
  | {
      readonly text: string
      readonly pieces?: number
      readonly reasoning?: string
      readonly finish?: 'stop' | 'length'
      readonly usage?: Partial<ModelUsage>
    }
  /** Tool calls, each one's arguments streamed in several pieces; optional text before them. */
  | {
      readonly toolCalls: readonly { readonly name: string; readonly arguments: unknown; readonly id?: string }[]
      readonly text?: string
      readonly usage?: Partial<ModelUsage>
    }
  /** An error answer (429 with retry-after, 500, 400), with OpenAI's error body. */
  | { readonly status: number; readonly retryAfterSeconds?: number; readonly message?: string }
  /** Sends `text` then holds the stream open until the client goes away (a cancel mid-stream). */
  | { readonly hold: true; readonly text?: string }

export type ModelRequest = {
  readonly api: 'chat' | 'responses'
  /** The request body as the SDK sent it, inspected by tests. */
  readonly body: any
  readonly headers: IncomingMessage['headers']
}

export type Answerer = (request: ModelRequest, index: number) => ModelAnswer | Promise<ModelAnswer>

export type ModelServer = {
  /** The base URL to give the SDK (ends in /v1). */
  readonly url: string
  readonly requests: ModelRequest[]
  /** Streams the client closed before their end. */
  readonly abandoned: () => number
  /** Answers in order (the last one repeats), or by a function of the request. */
  answer(answers: readonly ModelAnswer[] | Answerer): void
  close(): Promise<void>
}

const words = (text: string): string[] => text.match(/\S+\s*|\s+/g) ?? []

const split = (text: string, pieces: number | undefined): string[] => {
  if (!pieces) return words(text)
  const size = Math.max(1, Math.ceil(text.length / pieces))
  const out: string[] = []
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size))
  return out
}

const tokens = (text: string) => Math.max(1, Math.ceil(text.length / 4))

const usageOf = (request: ModelRequest, output: string, given: Partial<ModelUsage> | undefined): ModelUsage => ({
  input: given?.input ?? tokens(JSON.stringify(request.body.messages ?? request.body.input ?? '')),
  cachedInput: given?.cachedInput ?? 0,
  output: given?.output ?? tokens(output),
})

export async function startModelServer(): Promise<ModelServer> {
  let answerer: Answerer = () => ({ status: 500, message: 'no answer scripted' })
  const requests: ModelRequest[] = []
  let abandoned = 0
  const open = new Set<ServerResponse>()

  const server: Server = createServer(async (req, res) => {
    const api = req.url?.endsWith('/chat/completions') ? 'chat' : req.url?.endsWith('/responses') ? 'responses' : null
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    if (req.method !== 'POST' || !api) return error(res, 404, `no route ${req.method} ${req.url}`)
    let body: unknown
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    } catch {
      return error(res, 400, 'the body is not JSON')
    }
    const request: ModelRequest = { api, body, headers: req.headers }
    requests.push(request)
    const answer = await answerer(request, requests.length - 1)
    if ('status' in answer) {
      return error(res, answer.status, answer.message ?? 'scripted error', answer.retryAfterSeconds)
    }
    open.add(res)
    res.on('close', () => {
      open.delete(res)
      if (!res.writableFinished) abandoned++
    })
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
    const frames = api === 'chat' ? chatFrames(request, answer) : responseFrames(request, answer)
    for (const frame of frames) {
      if (res.destroyed) return
      res.write(frame)
      // A tick between frames: the client sees deltas arrive one by one, as from a real server.
      await new Promise((r) => setImmediate(r))
    }
    if ('hold' in answer) return // until the client goes away (or close() ends it)
    res.end()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    abandoned: () => abandoned,
    answer(answers) {
      answerer = typeof answers === 'function' ? answers : (_r, i) => answers[Math.min(i, answers.length - 1)]!
    },
    async close() {
      for (const res of open) res.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function error(res: ServerResponse, status: number, message: string, retryAfterSeconds?: number) {
  res.writeHead(status, {
    'content-type': 'application/json',
    ...(retryAfterSeconds !== undefined ? { 'retry-after': String(retryAfterSeconds) } : {}),
  })
  const type = status === 429 ? 'rate_limit_exceeded' : status >= 500 ? 'server_error' : 'invalid_request_error'
  res.end(JSON.stringify({ error: { message, type, param: null, code: type } }))
}

const data = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`

function* chatFrames(request: ModelRequest, answer: Exclude<ModelAnswer, { status: number }>): Generator<string> {
  const base = {
    id: 'chatcmpl-local',
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model: request.body.model,
  }
  const chunk = (delta: object, finish: string | null = null) =>
    data({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })
  yield chunk({ role: 'assistant', content: '' })
  let output = ''
  if ('reasoning' in answer && answer.reasoning) {
    for (const piece of words(answer.reasoning)) yield chunk({ reasoning_content: piece })
  }
  const text = 'text' in answer ? (answer.text ?? '') : ''
  for (const piece of split(text, 'pieces' in answer ? answer.pieces : undefined)) {
    output += piece
    yield chunk({ content: piece })
  }
  if ('hold' in answer) return
  let finish: string = 'finish' in answer && answer.finish ? answer.finish : 'stop'
  if ('toolCalls' in answer) {
    finish = 'tool_calls'
    for (const [index, call] of answer.toolCalls.entries()) {
      const args = typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments)
      output += call.name + args
      yield chunk({
        tool_calls: [
          { index, id: call.id ?? `call_${index}_${Date.now()}`, type: 'function', function: { name: call.name, arguments: '' } },
        ],
      })
      for (const piece of split(args, 3)) yield chunk({ tool_calls: [{ index, function: { arguments: piece } }] })
    }
  }
  yield chunk({}, finish)
  const u = usageOf(request, output, 'usage' in answer ? answer.usage : undefined)
  yield data({
    ...base,
    choices: [],
    usage: {
      prompt_tokens: u.input,
      completion_tokens: u.output,
      total_tokens: u.input + u.output,
      prompt_tokens_details: { cached_tokens: u.cachedInput },
    },
  })
  yield 'data: [DONE]\n\n'
}

function* responseFrames(request: ModelRequest, answer: Exclude<ModelAnswer, { status: number }>): Generator<string> {
  let sequence = 0
  const event = (type: string, payload: object) =>
    `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...payload })}\n\n`
  const response = (status: string, extra: object = {}) => ({
    id: 'resp_local',
    object: 'response',
    created_at: Math.floor(Date.now() / 1000),
    model: request.body.model,
    status,
    output: [],
    ...extra,
  })
  yield event('response.created', { response: response('in_progress') })
  let output = ''
  let outputIndex = 0
  if ('reasoning' in answer && answer.reasoning) {
    for (const piece of words(answer.reasoning)) {
      yield event('response.reasoning_summary_text.delta', {
        item_id: 'rs_local',
        output_index: outputIndex,
        summary_index: 0,
        delta: piece,
      })
    }
    outputIndex++
  }
  const text = 'text' in answer ? (answer.text ?? '') : ''
  if (text) {
    for (const piece of split(text, 'pieces' in answer ? answer.pieces : undefined)) {
      output += piece
      yield event('response.output_text.delta', {
        item_id: 'msg_local',
        output_index: outputIndex,
        content_index: 0,
        delta: piece,
        logprobs: [],
      })
    }
    if ('hold' in answer) return
    yield event('response.output_item.done', {
      output_index: outputIndex++,
      item: {
        type: 'message',
        id: 'msg_local',
        role: 'assistant',
        status: 'completed',
        content: [{ type: 'output_text', text, annotations: [] }],
      },
    })
  }
  if ('hold' in answer) return
  if ('toolCalls' in answer) {
    for (const [index, call] of answer.toolCalls.entries()) {
      const args = typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments)
      output += call.name + args
      const item = {
        type: 'function_call',
        id: `fc_${index}`,
        call_id: call.id ?? `call_${index}_${Date.now()}`,
        name: call.name,
      }
      yield event('response.output_item.added', {
        output_index: outputIndex,
        item: { ...item, arguments: '', status: 'in_progress' },
      })
      for (const piece of split(args, 3)) {
        yield event('response.function_call_arguments.delta', { item_id: item.id, output_index: outputIndex, delta: piece })
      }
      yield event('response.function_call_arguments.done', { item_id: item.id, output_index: outputIndex, arguments: args })
      yield event('response.output_item.done', {
        output_index: outputIndex++,
        item: { ...item, arguments: args, status: 'completed' },
      })
    }
  }
  const u = usageOf(request, output, 'usage' in answer ? answer.usage : undefined)
  const usage = {
    input_tokens: u.input,
    input_tokens_details: { cached_tokens: u.cachedInput },
    output_tokens: u.output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: u.input + u.output,
  }
  if ('finish' in answer && answer.finish === 'length') {
    yield event('response.incomplete', {
      response: response('incomplete', { usage, incomplete_details: { reason: 'max_output_tokens' } }),
    })
  } else {
    yield event('response.completed', { response: response('completed', { usage }) })
  }
}
