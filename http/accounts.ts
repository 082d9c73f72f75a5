import type { EventStore, RecordedEvent } from '../adapters/event-store.ts'
import { tokenKind, tokenMatchesHash } from '../adapters/opaque-tokens.ts'
import { accountStream, credentialStream, orgStream } from '../adapters/streams.ts'
import { account, type CredentialState, credential, usable } from '../domain/accounts.ts'
import { foldRecorded } from '../domain/decider.ts'
import { type OrgState, org } from '../domain/orgs.ts'

/*
 * Accounts, credentials and orgs as the event store has them (never a read model that may trail): what
 * authentication folds to tell who a request is, and what the command and query sides load too.
 */

type StoreDeps = { readonly store: EventStore }

export async function loadAccount(deps: StoreDeps, accountId: string) {
  const events = await deps.store.readStream(accountStream(accountId))
  return foldRecorded(account, events)
}

const TOKEN = /^(ws[sp]_[A-Za-z0-9_-]{43})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/

export type VerifiedCredential = Extract<CredentialState, { exists: true }> & {
  credentialId: string
  /** Where the credential was issued: read models at this position know its user. */
  issuedAt: RecordedEvent['position']
}

export const loadCredential = async (deps: StoreDeps, credentialId: string) => {
  const events = await deps.store.readStream(credentialStream(credentialId))
  const state = foldRecorded(credential, events)
  return { events, state }
}

/**
 * The live credential a token stands for, or null (malformed, unknown, wrong secret, revoked, expired, or
 * opened from a session that has ended). The secret is compared by hash in constant time.
 */
export async function verifyToken(deps: StoreDeps, token: string, now: Date): Promise<VerifiedCredential | null> {
  const m = TOKEN.exec(token)
  if (!m || !tokenKind(m[1]!)) return null
  const credentialId = m[2]!
  const { events, state } = await loadCredential(deps, credentialId)
  if (!usable(state, now) || !tokenMatchesHash(token, state.tokenHash)) return null
  if (state.parentId) {
    // Ended means revoked (logout) or expired: a child outliving its sign-in would stretch it by its own lifetime.
    const parent = await loadCredential(deps, state.parentId)
    if (!usable(parent.state, now)) return null
  }
  return { ...state, credentialId, issuedAt: events[0]!.position }
}

/** An org's state, folded from its stream (whoever wrote it: the caller is the platform). */
export async function loadOrg(deps: StoreDeps, orgId: string): Promise<OrgState> {
  const events = await deps.store.readStream(orgStream(orgId))
  return foldRecorded(org, events)
}
