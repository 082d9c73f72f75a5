import type { Decider, DomainEvent } from './decider.ts'

/*
 * A user's notification settings (`notification_settings-<userId>`): today, whether they get missed-mention emails
 * (on unless turned off). Its own stream, so changing it never contends with the org's.
 */

export type NotificationSettingsEvent = DomainEvent<'user.notifications_changed', { userId: string; email: boolean; at: string }>
export type NotificationSettings = { readonly email: boolean }
export type NotificationSettingsCommand = { type: 'change'; userId: string; email: boolean; at: string }

export const notificationSettings: Decider<NotificationSettingsCommand, NotificationSettingsEvent, NotificationSettings> = {
  initialState: { email: true },
  decide: (c, s) =>
    s.email === c.email ? [] : [{ type: 'user.notifications_changed', data: { userId: c.userId, email: c.email, at: c.at } }],
  evolve: (_s, e) => ({ email: e.data.email }),
}
