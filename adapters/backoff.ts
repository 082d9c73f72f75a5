/**
 * Exponential backoff with jitter, shared by every subscription that retries (projectors, processors): the n-th
 * failure in a row waits between half and all of base·2^(n−1), capped, so consumers failing together spread out.
 */
export const retryDelayMs = (failures: number, baseMs: number, capMs: number, random: () => number = Math.random): number => {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, failures - 1))
  return ceiling / 2 + (random() * ceiling) / 2
}
