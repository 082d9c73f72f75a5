import { accountStream, operatorsStream } from '../adapters/streams.ts'
import { account } from '../domain/accounts.ts'
import { operators } from '../domain/operators.ts'
import { type CommandContext, handleCommand, type PipelineDeps } from './pipeline.ts'

/*
 * Operator grants and revocations on the one `operators-platform` stream. The account granted is read from its
 * own stream (it must exist: the person signed in once), and the append is conditioned on it.
 */

/** The shared token's one use: the first operator. */
export async function bootstrapOperator(deps: PipelineDeps, ctx: CommandContext, accountId: string) {
  return handleCommand(
    deps,
    operators,
    operatorsStream(),
    async (_, read) => ({
      type: 'bootstrap' as const,
      accountId,
      accountExists: (await read(account, accountStream(accountId))).exists,
      at: ctx.now().toISOString(),
    }),
    { ...ctx, tenantId: null },
  )
}

export async function grantOperator(deps: PipelineDeps, ctx: CommandContext, input: { accountId: string; by: string }) {
  return handleCommand(
    deps,
    operators,
    operatorsStream(),
    async (_, read) => ({
      type: 'grant' as const,
      accountId: input.accountId,
      accountExists: (await read(account, accountStream(input.accountId))).exists,
      by: input.by,
      at: ctx.now().toISOString(),
    }),
    { ...ctx, tenantId: null },
  )
}

export async function revokeOperator(deps: PipelineDeps, ctx: CommandContext, input: { accountId: string; by: string }) {
  return handleCommand(
    deps,
    operators,
    operatorsStream(),
    { type: 'revoke', accountId: input.accountId, by: input.by, at: ctx.now().toISOString() },
    { ...ctx, tenantId: null },
  )
}
