import { describe, expect, it } from 'vitest'
import { fold } from '../../domain/decider.ts'
import { erasure } from '../../domain/erasure.ts'
import { ERASED_NAME, personalData } from '../../domain/personal-data.ts'
import { spec } from './spec.ts'

const at = '2026-11-28T10:00:00.000Z'

describe('erasure', () => {
  const rules = spec(erasure)

  it('a person is erased once; erasing them again records nothing', () => {
    rules
      .given([])
      .when({ userId: 'u1', at })
      .then([{ type: 'user.erased', data: { userId: 'u1', at } }])
    rules
      .given([{ type: 'user.erased', data: { userId: 'u1', at } }])
      .when({ userId: 'u1', at })
      .then([])
    expect(erasure.initialState).toEqual({ erased: false })
    expect(fold(erasure, [{ type: 'user.erased', data: { userId: 'u1', at } }])).toEqual({ erased: true })
  })

  it('a user.erased event names whose key to shred', () =>
    expect(personalData.erasures['user.erased']?.({ userId: 'u1', at })).toBe('u1'))
})

describe('personal data: which fields, whose, and what they read as once erased', () => {
  const { fields } = personalData

  it('a message’s text is its author’s, an edit’s texts its editor’s, and read as empty', () => {
    const created = fields['message.created']!
    expect(
      created.subject(
        { messageId: 'm', roomId: 'r', authorId: 'alice', authorType: 'user', text: 't', threadRootId: null, mentions: [], at },
        'someone',
      ),
    ).toBe('alice')
    expect(created.fields).toEqual({ text: '' })
    const updated = fields['message.updated']!
    expect(updated.subject({ messageId: 'm', roomId: 'r', text: 't', previousText: 'p', mentions: [], at }, 'alice')).toBe(
      'alice',
    )
    expect(updated.fields).toEqual({ text: '', previousText: '' })
  })

  it('a draft is its writer’s', () => {
    const saved = fields['draft.saved']!
    expect(saved.subject({ roomId: 'r', userId: 'bob', text: 't', at }, 'someone')).toBe('bob')
    expect(saved.fields).toEqual({ text: '' })
  })

  it('a member’s display name and email are theirs; an erased name reads as a placeholder, an email as none', () => {
    const joined = fields['user.joined']!
    expect(
      joined.subject(
        { userId: 'u1', accountId: 'acc', type: 'human', role: 'member', email: 'e', displayName: 'd', at },
        'someone',
      ),
    ).toBe('u1')
    expect(joined.fields).toEqual({ displayName: ERASED_NAME, email: null })
    expect(ERASED_NAME).toBe('[erased]')
  })

  it('an account’s email is the account’s own', () => {
    const registered = fields['account.registered']!
    expect(
      registered.subject({ accountId: 'acc', issuer: 'i', subject: 's', email: 'e', emailVerified: true, at }, 'someone'),
    ).toBe('acc')
    expect(registered.fields).toEqual({ email: '' })
  })

  it('names of shared things and usernames are not personal data', () => {
    expect(Object.keys(fields).sort()).toEqual([
      'account.registered',
      'draft.saved',
      'message.created',
      'message.updated',
      'user.joined',
    ])
    expect(Object.keys(personalData.erasures)).toEqual(['user.erased'])
  })
})
