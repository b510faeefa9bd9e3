// Binary multiples on purpose: Exchange Online counts in 1024s (its EHLO SIZE 157286400 is
// 150 × 1024²), so '35MB' in our config means the bytes an operator reading its limits expects.
const UNIT_BYTES: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

const SIZE_PATTERN = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

/**
 * '35MB', '512KB', '1GiB', '100' or a number of bytes → bytes. KB/KiB = 1024, MB/MiB = 1024²,
 * GB/GiB = 1024³, case-insensitive. Fractions ('1.5MB') round down to a whole byte.
 * @throws RangeError naming the text when it is not a non-negative size.
 */
export function parseByteSize(text: string | number): number {
  if (typeof text === 'number') {
    if (!Number.isSafeInteger(text) || text < 0) {
      throw new RangeError(`invalid byte size ${String(text)}: expected a whole, non-negative number of bytes`);
    }
    return text;
  }
  const match = SIZE_PATTERN.exec(text.trim());
  const unit = match?.[2]?.toLowerCase();
  const multiplier = unit === undefined ? undefined : UNIT_BYTES[unit];
  if (!match || multiplier === undefined) {
    throw new RangeError(
      `invalid byte size ${JSON.stringify(text)}: expected a number with an optional unit B, KB, MB or GB (KiB, MiB, GiB alike), e.g. '35MB'`,
    );
  }
  const bytes = Math.floor(Number(match[1]) * multiplier);
  if (!Number.isSafeInteger(bytes)) {
    throw new RangeError(`invalid byte size ${JSON.stringify(text)}: too large`);
  }
  return bytes;
}
