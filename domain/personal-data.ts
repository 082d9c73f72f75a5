import type { AccountEvent, InviteEvent } from './accounts.ts'
import type { ErasureEvent } from './erasure.ts'
import type { DraftEvent, MessageEvent } from './messages.ts'
import type { OrgEvent } from './orgs.ts'

/*
 * Which fields of which events are personal data, and whose. The event store encrypts each of them under its
 * subject's data key (adapters/personal-data-store.ts); once the key is shredded they read as the placeholder
 * below. A subject is the person the data is about or who wrote it: the author of a message, the user a name
 * or an email belongs to.
 *
 * Placeholders are values the live domain never produces, so readers can tell an erased field from a real one:
 * a message or draft text reads '' (the domain refuses an empty message, and an empty draft is no draft), a
 * display name '[erased]', an email null (or '' where the field cannot be null).
 *
 * Names of shared things (orgs, rooms, spaces, agents) and usernames are not listed: they belong to the org, and
 * a username is the handle other people's messages mention (and the name of its reservation stream).
 */

export const ERASED_NAME = '[erased]'

type Known = MessageEvent | DraftEvent | OrgEvent | AccountEvent | InviteEvent | ErasureEvent
type DataOf<T extends Known['type']> = Extract<Known, { type: T }>['data']
type TextFields<D> = { [K in keyof D & string]: D[K] extends string | null | undefined ? K : never }[keyof D & string]

export type PersonalFields<D> = {
  /** Whose key encrypts the fields: from the event's data, or its actor (the one who wrote it). */
  readonly subject: (data: D, actorId: string) => string
  /** Each personal field and what it reads as once its subject is erased. */
  readonly fields: { readonly [K in TextFields<D>]?: '' | typeof ERASED_NAME | null }
}

export type PersonalDataRegistry = {
  readonly fields: { readonly [T in Known['type']]?: PersonalFields<DataOf<T>> }
  /** Events that erase a subject: appending one shreds that subject's key first. */
  readonly erasures: { readonly [T in Known['type']]?: (data: DataOf<T>) => string }
}

export const personalData: PersonalDataRegistry = {
  fields: {
    'message.created': { subject: (d) => d.authorId, fields: { text: '' } },
    // Only its author edits a message: the actor is the author.
    'message.updated': { subject: (_, actorId) => actorId, fields: { text: '', previousText: '' } },
    'draft.saved': { subject: (d) => d.userId, fields: { text: '' } },
    'user.joined': { subject: (d) => d.userId, fields: { displayName: ERASED_NAME, email: null } },
    // A global account is its own subject: erasing one org's user leaves the person's sign-in alone.
    'account.registered': { subject: (d) => d.accountId, fields: { email: '' } },
  },
  erasures: { 'user.erased': (d) => d.userId },
}
