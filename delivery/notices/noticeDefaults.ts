/**
 * How long after its arrival a message held for the operator gets its "Delayed" notice, in the
 * config's notation, for both runtimes (the office box's notices.heldAfter, the cloud's
 * SMARTHOST_DELAYED_NOTICE_AFTER). Exchange Online's own delay notification comes after 4 hours
 * (DelayNotificationTimeout), which is what a sender there is used to.
 */
export const DELAYED_NOTICE_AFTER = '4h';
