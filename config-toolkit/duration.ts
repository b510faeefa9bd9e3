const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
type Unit = keyof typeof UNIT_MS;
const UNIT_ORDER: readonly Unit[] = ['d', 'h', 'm', 's', 'ms'];

/**
 * '30s', '5m', '4h', '2d', '1h30m', '250ms' → milliseconds. Parts go from the largest unit down,
 * each unit at most once, so '30m1h' or '1h1h' (likely typos) are refused instead of summed.
 * @throws RangeError naming the text.
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  const parts = [...trimmed.matchAll(/(\d+)(ms|[dhms])/g)];
  const covered = parts.reduce((length, part) => length + part[0].length, 0);
  let total = 0;
  let lastRank = -1;
  let wellFormed = parts.length > 0 && covered === trimmed.length;
  for (const part of parts) {
    const unit = part[2] as Unit;
    const rank = UNIT_ORDER.indexOf(unit);
    if (rank <= lastRank) {
      wellFormed = false;
      break;
    }
    lastRank = rank;
    total += Number(part[1]) * UNIT_MS[unit];
  }
  if (!wellFormed) {
    throw new RangeError(
      `invalid duration ${JSON.stringify(text)}: expected whole numbers with units d, h, m, s or ms, largest first, e.g. '30s', '5m' or '1h30m'`,
    );
  }
  if (!Number.isSafeInteger(total)) {
    throw new RangeError(`invalid duration ${JSON.stringify(text)}: too long`);
  }
  return total;
}
