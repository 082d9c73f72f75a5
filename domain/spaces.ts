import { type Decider, DomainError, type DomainEvent } from './decider.ts'

export const SPACE_NAME_MAX = 80

export type SpaceKind = 'personal' | 'public'

export type SpaceEvent =
  | DomainEvent<'space.created', { spaceId: string; name: string; kind: SpaceKind; ownerId: string; at: string }>
  | DomainEvent<'space.updated', { spaceId: string; name: string; at: string }>

export type SpaceState =
  | { readonly exists: false }
  | { readonly exists: true; readonly name: string; readonly kind: SpaceKind; readonly ownerId: string }

export type SpaceCommand =
  | { type: 'create'; spaceId: string; name: string; kind: SpaceKind; actorId: string; actorIsGuest: boolean; at: string }
  | { type: 'update'; spaceId: string; name: string; actorId: string; actorIsAdmin: boolean; at: string }

const cleanName = (name: string): string => {
  const n = name.trim()
  if (n.length === 0 || n.length > SPACE_NAME_MAX)
    throw new DomainError('SPACE_NAME_INVALID', `a space name has 1 to ${SPACE_NAME_MAX} characters`)
  return n
}

export const space: Decider<SpaceCommand, SpaceEvent, SpaceState> = {
  initialState: { exists: false },
  decide(c, s) {
    switch (c.type) {
      case 'create':
        if (s.exists) throw new DomainError('SPACE_EXISTS', 'this space exists', 'conflict')
        if (c.actorIsGuest) throw new DomainError('FORBIDDEN', 'guests do not create spaces', 'forbidden')
        return [
          {
            type: 'space.created',
            data: { spaceId: c.spaceId, name: cleanName(c.name), kind: c.kind, ownerId: c.actorId, at: c.at },
          },
        ]
      case 'update': {
        if (!s.exists) throw new DomainError('SPACE_NOT_FOUND', 'no such space', 'not_found')
        if (s.kind === 'personal' ? s.ownerId !== c.actorId : !c.actorIsAdmin && s.ownerId !== c.actorId) {
          throw new DomainError('FORBIDDEN', 'only its owner or an admin changes a space', 'forbidden')
        }
        const name = cleanName(c.name)
        return name === s.name ? [] : [{ type: 'space.updated', data: { spaceId: c.spaceId, name, at: c.at } }]
      }
    }
  },
  evolve(s, e) {
    switch (e.type) {
      case 'space.created':
        return { exists: true, name: e.data.name, kind: e.data.kind, ownerId: e.data.ownerId }
      case 'space.updated':
        return s.exists ? { ...s, name: e.data.name } : s
    }
  },
}
