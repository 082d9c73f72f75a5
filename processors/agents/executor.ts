import {
  type AgentRunsPort,
  type HeldRun,
  RunLostError,
  type RunningAgent,
  SpendRefused,
  type ToolSpec,
} from '../../adapters/agent-runs.ts'
import { type Llm, LlmError, type LlmMessage, type LlmTool, type LlmToolCall, type LlmUsage } from '../../adapters/llm.ts'
import type { Logger } from '../../adapters/logger.ts'
import type { RunItem } from '../../domain/runs.ts'
import { type RunRecorder, runItemId } from './recorder.ts'
import type { ToolCall } from './tools.ts'
import { DEFAULT_CONTEXT_TOKENS, fitWindow, MAX_OUTPUT_TOKENS, requestTokens } from './window.ts'

/*
 * One run, from where its items say it stands to its end (or to a person's approval): the model is called with
 * the context and the run's turns so far, its text streamed into a message item, its tool calls recorded and run
 * (a risky one only once a person approved it), their outputs fed back, until it answers without calling a tool,
 * stops at a limit, or fails. Everything it does is a recorded item named by its place in the run, so a worker that
 * resumes a run another worker lost (or one repeating a command whose answer it lost) records nothing twice.
 */

export type ExecutorDeps = {
  readonly llm: Llm | null
  readonly logger: Logger
  readonly maxSteps: number
  /** A model's context window, in tokens (unset: DEFAULT_CONTEXT_TOKENS). */
  window?(model: string): number
  /** Context, tools, spending and the answer, through the worker's port (in process or `/api/internal/*`). */
  readonly port: AgentRunsPort
}

/** Who acts in a run, as its tools and its answer are authorized. */
export type RunAgent = Omit<ToolCall, 'idFor' | 'runId' | 'roomId' | 'taskId'>

export type RunOutcome = 'completed' | 'failed' | 'incomplete' | 'requires_action' | 'lost'

/** A model call's recorded items: what it thought, said and asked to run, then what the tools answered. */
type Turn = { reasoning?: RunItem; message?: RunItem; calls: RunItem[]; outputs: Map<string, RunItem> }

function turnsOf(items: Iterable<RunItem>): Turn[] {
  const turns: Turn[] = []
  for (const item of items) {
    if (item.kind === 'tool_output') {
      if (item.toolCallId) turns.at(-1)?.outputs.set(item.toolCallId, item)
      continue
    }
    if (item.kind !== 'message' && item.kind !== 'reasoning' && item.kind !== 'tool_call') continue
    let turn = turns.at(-1)
    if (!turn || turn.outputs.size > 0) {
      turn = { calls: [], outputs: new Map() }
      turns.push(turn)
    }
    if (item.kind === 'tool_call') turn.calls.push(item)
    else turn[item.kind] = item
  }
  return turns
}

/** A turn whose model call was cut short (the worker died while it streamed): it is made again. */
const interrupted = (t: Turn) =>
  t.calls.length === 0 && (t.message?.status === 'in_progress' || t.reasoning?.status === 'in_progress' || !t.message)

/** The name of the tool an agent calls to say nothing (processors/agents/builtin-tools.ts). */
export const STAY_SILENT = 'stay_silent'

const choseSilence = (run: HeldRun) =>
  [...run.items.values()].some((i) => i.kind === 'tool_output' && i.tool === STAY_SILENT && i.status === 'completed')

/** The tools as the model is told of them. */
const definitions = (tools: readonly ToolSpec[]): LlmTool[] =>
  tools.map(({ name, description, parameters }) => ({ name, description, parameters }))

const callOf = (item: RunItem): LlmToolCall => ({ id: item.toolCallId!, name: item.tool!, arguments: item.arguments ?? '{}' })

/** The run's own turns, as the model reads them back. */
function conversationOf(run: HeldRun, turns: readonly Turn[]): LlmMessage[] {
  const messages: LlmMessage[] = run.inputs.map((input) => ({ role: 'user', content: input.text }))
  for (const t of turns) {
    if (interrupted(t)) continue
    messages.push({ role: 'assistant', content: t.message?.content || null, toolCalls: t.calls.map(callOf) })
    for (const c of t.calls) {
      const output = t.outputs.get(c.toolCallId!)
      if (output) messages.push({ role: 'tool', toolCallId: c.toolCallId!, content: output.content })
    }
  }
  return messages
}

export async function executeRun(
  deps: ExecutorDeps,
  recorder: RunRecorder,
  agent: RunningAgent,
  call: RunAgent,
): Promise<RunOutcome> {
  try {
    return await execute(deps, recorder, agent, call)
  } catch (e) {
    recorder.discard()
    if (e instanceof RunLostError || call.signal.aborted) return 'lost'
    throw e
  }
}

async function execute(deps: ExecutorDeps, recorder: RunRecorder, agent: RunningAgent, base: RunAgent): Promise<RunOutcome> {
  const tools = await deps.port.tools(agent.skillsets)
  if (!deps.llm) {
    await recorder.add('error:no_model', {
      kind: 'error',
      content: 'No model is configured: set OPENAI_BASE_URL (an OpenAI-compatible server) or OPENAI_API_KEY.',
      toolCallId: null,
      tool: null,
      arguments: null,
    })
    await recorder.fail('NO_MODEL', 'no model is configured')
    return 'failed'
  }
  for (;;) {
    const run = recorder.run
    const turns = turnsOf(run.items.values())
    const last = turns.at(-1)
    // The last turn's calls that have no output yet: run them (or wait for a person) before the next model call.
    if (last && !interrupted(last)) {
      for (const item of last.calls) {
        if (last.outputs.has(item.toolCallId!)) continue
        if ((await runTool(deps, recorder, tools, item, turns.length - 1, agent, base.signal)) === 'requires_action')
          return 'requires_action'
      }
      if (last.calls.length === 0) {
        // The model answered without calling a tool: its words are the run's answer, unless it chose silence.
        const text = last.message?.content.trim() ?? ''
        if (text && !choseSilence(run)) await deps.port.reply(run, agent, text, runItemId(run.runId, 'reply'))
        await recorder.complete()
        return 'completed'
      }
      if (recorder.run.items.size !== run.items.size) continue
    }
    const step = last && interrupted(last) ? turns.length - 1 : turns.length
    if (step >= deps.maxSteps) {
      await recorder.incomplete('max_steps', `stopped after ${deps.maxSteps} model calls`)
      return 'incomplete'
    }
    // Assembled once, within the model's window: what the call is priced on before it is made is what it sends.
    const offered = definitions(tools)
    const messages = fitWindow(await deps.port.context(run, agent), conversationOf(run, turns.slice(0, step)), {
      window: deps.window?.(agent.model) ?? DEFAULT_CONTEXT_TOKENS,
      tools: offered,
    })
    try {
      await deps.port.reserve(run, agent, step, requestTokens(messages, offered), MAX_OUTPUT_TOKENS)
    } catch (e) {
      if (!(e instanceof SpendRefused)) throw e
      await recorder.add(`step:${step}:limit`, {
        kind: 'error',
        content: e.message,
        toolCallId: null,
        tool: null,
        arguments: null,
      })
      await recorder.incomplete(e.reason, e.message)
      return 'incomplete'
    }
    const answered = await callModel(deps, recorder, agent, step, messages, tools, base.signal)
    if (answered === 'failed') return 'failed'
    if (answered.usage) await deps.port.recordUsage(recorder.run, agent, step, answered.usage)
  }
}

/** One model call, streamed into the run's items. */
async function callModel(
  deps: ExecutorDeps,
  recorder: RunRecorder,
  agent: RunningAgent,
  step: number,
  messages: LlmMessage[],
  tools: readonly ToolSpec[],
  signal: AbortSignal,
): Promise<{ usage: LlmUsage | null } | 'failed'> {
  let text = ''
  let reasoning = ''
  let messageId: string | null = null
  let reasoningId: string | null = null
  let calls = 0
  const item = { toolCallId: null, tool: null, arguments: null } as const
  try {
    for await (const event of deps.llm!.stream({
      model: agent.model,
      messages,
      tools: definitions(tools),
      // What the window held back for the answer, and what its reservation priced.
      maxOutputTokens: MAX_OUTPUT_TOKENS,
      ...(agent.reasoningEffort ? { reasoningEffort: agent.reasoningEffort } : {}),
      signal,
    })) {
      switch (event.type) {
        case 'reasoning':
          reasoning += event.delta
          reasoningId ??= await recorder.add(`step:${step}:reasoning`, {
            ...item,
            kind: 'reasoning',
            content: '',
            status: 'in_progress',
          })
          recorder.stream(reasoningId, reasoning)
          break
        case 'text':
          text += event.delta
          messageId ??= await recorder.add(`step:${step}:message`, {
            ...item,
            kind: 'message',
            content: '',
            status: 'in_progress',
          })
          recorder.stream(messageId, text)
          break
        case 'tool_call':
          calls++
          if (reasoningId) await recorder.finish(reasoningId, reasoning)
          if (messageId) await recorder.finish(messageId, text)
          await recorder.add(`step:${step}:call:${event.call.id}`, {
            kind: 'tool_call',
            content: '',
            toolCallId: event.call.id,
            tool: event.call.name,
            arguments: event.call.arguments,
          })
          break
        case 'done':
          if (reasoningId) await recorder.finish(reasoningId, reasoning)
          // A call that said nothing and called nothing still ends its turn: an empty answer.
          if (!messageId && calls === 0) {
            messageId = await recorder.add(`step:${step}:message`, {
              ...item,
              kind: 'message',
              content: '',
              status: 'in_progress',
            })
          }
          if (messageId) await recorder.finish(messageId, text)
          return { usage: event.usage }
      }
    }
    throw new LlmError('unavailable', 'the model’s stream ended without finishing')
  } catch (e) {
    if (!(e instanceof LlmError) || e.kind === 'aborted') throw e
    deps.logger.warn({ runId: recorder.run.runId, kind: e.kind, status: e.status, err: e.message }, 'model call failed')
    if (messageId) await recorder.finish(messageId, text, 'failed')
    await recorder.add(`step:${step}:error`, {
      kind: 'error',
      content: `The model call failed (${e.kind}${e.status ? ` ${e.status}` : ''}): ${e.message}`,
      ...item,
    })
    await recorder.fail(
      e.kind === 'refused' ? 'MODEL_REFUSED' : e.kind === 'unauthorized' ? 'MODEL_UNAUTHORIZED' : 'MODEL_UNAVAILABLE',
      e.message,
    )
    return 'failed'
  }
}

/** Runs one recorded call as the agent, or asks a person first; records its output. */
async function runTool(
  deps: ExecutorDeps,
  recorder: RunRecorder,
  tools: readonly ToolSpec[],
  item: RunItem,
  step: number,
  agent: RunningAgent,
  signal: AbortSignal,
): Promise<'done' | 'requires_action'> {
  const run = recorder.run
  const callId = item.toolCallId!
  const output = (content: string, status: 'completed' | 'failed' = 'completed') =>
    recorder.add(`step:${step}:output:${callId}`, {
      kind: 'tool_output',
      content,
      status,
      toolCallId: callId,
      tool: item.tool,
      arguments: null,
    })
  const tool = tools.find((t) => t.name === item.tool)
  if (!tool) {
    await output(`There is no tool named ${item.tool} for this agent.`, 'failed')
    return 'done'
  }
  const decision = run.decisions.get(callId)
  if (decision === 'reject') {
    await output('A person rejected this call: it was not run.', 'failed')
    return 'done'
  }
  if (tool.risky && decision !== 'approve' && !(await deps.port.alwaysAllowed(run, agent, tool.name))) {
    await recorder.requireAction(item.itemId)
    return 'requires_action'
  }
  const result = await deps.port.runTool(
    run,
    agent,
    { toolCallId: callId, tool: tool.name, arguments: item.arguments ?? '{}' },
    signal,
  )
  if (result.status === 'failed') deps.logger.info({ runId: run.runId, tool: tool.name, err: result.output }, 'tool call failed')
  await output(result.output, result.status)
  return 'done'
}
