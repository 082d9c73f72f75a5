import { describe, it } from 'vitest'
import { type NotificationSettingsEvent, notificationSettings } from '../../domain/notifications.ts'
import { spec } from './spec.ts'

const at = '2026-12-02T10:00:00.000Z'
const change = (email: boolean) => ({ type: 'change', userId: 'u1', email, at }) as const
const changed = (email: boolean): NotificationSettingsEvent => ({
  type: 'user.notifications_changed',
  data: { userId: 'u1', email, at },
})

describe('notification settings', () => {
  const rules = spec(notificationSettings)

  it('emails are on until turned off', () =>
    rules
      .given([])
      .when(change(false))
      .then([changed(false)]))
  it('turning on what is on decides nothing', () => rules.given([]).when(change(true)).then([]))
  it('turned off, they can be turned on again', () =>
    rules
      .given([changed(false)])
      .when(change(true))
      .then([changed(true)]))
  it('turning off twice decides nothing the second time', () =>
    rules
      .given([changed(false)])
      .when(change(false))
      .then([]))
})
