import { streamName } from './event-store.ts'

/*
 * The names of the streams that both the command side and the HTTP shell read (accounts, credentials, orgs and
 * org name reservations): authentication and the read API fold or probe them, commands append to them. Streams
 * only commands touch are named next to their handlers.
 */

export const accountStream = (id: string) => streamName('account', id)
export const credentialStream = (id: string) => streamName('credential', id)
export const orgStream = (orgId: string) => streamName('org', orgId)
export const orgNameStream = (slug: string) => streamName('org_name', slug)
/** An agent's settings, access and role prompt: its own commands, and the usage caps and tasks that name it, read it. */
export const agentStream = (id: string) => streamName('agent', id)
/** Every operator grant and revocation: one stream, the platform's (domain/operators.ts). */
export const operatorsStream = () => streamName('operators', 'platform')
