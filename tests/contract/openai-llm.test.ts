import { openAiLlm } from '../../adapters/openai-llm.ts'
import { type ModelRequest, startModelServer } from '../support/openai-server.ts'
import { llmContract } from './llm.contract.ts'

type ChatMessage = {
  role: string
  content: string | null
  tool_calls?: { id: string; function: { name: string; arguments: string } }[]
  tool_call_id?: string
}
type ResponseItem = {
  role?: string
  content?: string
  type?: string
  call_id?: string
  name?: string
  arguments?: string
  output?: string
}

/** Both wire formats, read back as one shape: what each message said. */
const chatConversation = (request: ModelRequest) =>
  (request.body.messages as ChatMessage[]).map((m) =>
    m.role === 'tool'
      ? { role: 'tool', content: `${m.tool_call_id}: ${m.content}` }
      : m.tool_calls
        ? { role: m.role, content: m.tool_calls.map((c) => `call ${c.function.name} ${c.function.arguments} ${c.id}`).join('; ') }
        : { role: m.role, content: m.content ?? '' },
  )

const responsesConversation = (request: ModelRequest) =>
  (request.body.input as ResponseItem[]).map((item) =>
    item.type === 'function_call_output'
      ? { role: 'tool', content: `${item.call_id}: ${item.output}` }
      : item.type === 'function_call'
        ? { role: 'assistant', content: `call ${item.name} ${item.arguments} ${item.call_id}` }
        : { role: item.role ?? '', content: item.content ?? '' },
  )

for (const api of ['chat', 'responses'] as const) {
  llmContract(`openai SDK, ${api === 'chat' ? 'Chat Completions' : 'Responses API'}, to a local server`, async () => {
    const server = await startModelServer()
    return {
      server,
      llm: (options) => openAiLlm({ baseUrl: server.url, apiKey: 'sk-local', api, maxRetries: options?.maxRetries ?? 0 }),
      conversation: api === 'chat' ? chatConversation : responsesConversation,
      teardown: () => server.close(),
    }
  })
}
