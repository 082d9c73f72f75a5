import { z } from 'zod'
import type { ToolSpec } from '../../adapters/agent-runs.ts'

/*
 * The one registry agents act through. A tool is named, described to the model with a JSON Schema of its
 * arguments (from zod, which also checks what the model wrote), belongs to a skillset an agent may have, and is
 * either a read (never asks) or risky (pauses the run until a person approves the call). Later contexts register
 * theirs (VMs, GitHub, Composio) here.
 */

/** What a tool runs with: who acts, where, and an id that is the same each time this very call is run again. */
export type ToolCall = {
  readonly tenantId: string
  readonly agentId: string
  /** The agent's role in the org, as its commands are authorized. */
  readonly role: 'owner' | 'admin' | 'member' | 'guest'
  readonly runId: string
  readonly roomId: string
  readonly taskId: string | null
  /** Derived from the run and the model's call: what a tool creates under it is created once, however often it runs. */
  idFor(purpose: string): string
  /** Aborted when the run is cancelled or its lease is lost: a long tool stops. */
  readonly signal: AbortSignal
}

export type ToolResult = {
  /** What the model reads back as the call's output. */
  readonly output: string
}

export type AgentTool<A extends z.ZodObject = z.ZodObject> = {
  readonly name: string
  readonly description: string
  readonly arguments: A
  /** Which skillset brings it: `core` every agent has; the others (vms, coding, browser, …) are opt-in. */
  readonly skillset: string
  /** A risky call waits for a person's approval (unless always allowed for this agent in this room). */
  readonly risky: boolean
  run(args: z.infer<A>, call: ToolCall): Promise<ToolResult>
}

export const CORE_SKILLSET = 'core'

/** A tool call the model made that cannot run as written: answered to the model, which may try again. */
export class ToolInputError extends Error {
  override readonly name = 'ToolInputError'
}

export class ToolRegistry {
  private readonly tools = new Map<string, AgentTool>()

  register<A extends z.ZodObject>(tool: AgentTool<A>): this {
    if (this.tools.has(tool.name)) throw new Error(`a tool named ${tool.name} is registered already`)
    this.tools.set(tool.name, tool as unknown as AgentTool)
    return this
  }

  get(name: string): AgentTool | undefined {
    return this.tools.get(name)
  }

  /** The tools of these skillsets (core always), by name. */
  available(skillsets: readonly string[]): AgentTool[] {
    const allowed = new Set([CORE_SKILLSET, ...skillsets])
    return [...this.tools.values()].filter((t) => allowed.has(t.skillset)).sort((a, b) => a.name.localeCompare(b.name))
  }

  /** The tools as the model is told of them, and as a worker decides whether a call needs a person's approval. */
  static specs(tools: readonly AgentTool[]): ToolSpec[] {
    return tools.map((t) => ({
      name: t.name,
      description: t.description,
      parameters: z.toJSONSchema(t.arguments, { target: 'draft-2020-12' }) as Record<string, unknown>,
      skillset: t.skillset,
      risky: t.risky,
    }))
  }

  /** The model's arguments (JSON text) checked against the tool's schema. */
  static parse(tool: AgentTool, json: string): Record<string, unknown> {
    let value: unknown
    try {
      value = json.trim() === '' ? {} : JSON.parse(json)
    } catch {
      throw new ToolInputError(`the arguments of ${tool.name} are not JSON`)
    }
    const parsed = tool.arguments.safeParse(value)
    if (!parsed.success) {
      throw new ToolInputError(
        `invalid arguments for ${tool.name}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
      )
    }
    return parsed.data as Record<string, unknown>
  }
}
