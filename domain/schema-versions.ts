import { upcasters } from './upcasting.ts'

/**
 * Event types whose data changed shape. To change an event: bump `current`, add the step from the
 * previous version, and keep deciders and projectors on the newest shape only (see README, "Changing an event").
 */
export const eventUpcasters = upcasters({})
