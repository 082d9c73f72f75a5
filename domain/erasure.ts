import type { Decider, DomainEvent } from './decider.ts'

/**
 * A person's right to be forgotten (`erasure-<userId>`). The event carries no personal data: it names whom to
 * forget. Appending it shreds the person's data key (see personal-data.ts), so what their events said reads as
 * erased from then on, and read models scrub what they kept of them. Erasing twice records nothing new.
 */
export type ErasureEvent = DomainEvent<'user.erased', { userId: string; at: string }>

export const erasure: Decider<{ userId: string; at: string }, ErasureEvent, { erased: boolean }> = {
  initialState: { erased: false },
  decide: (c, s) => (s.erased ? [] : [{ type: 'user.erased', data: { userId: c.userId, at: c.at } }]),
  evolve: () => ({ erased: true }),
}
