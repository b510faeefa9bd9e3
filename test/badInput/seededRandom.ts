/**
 * A small deterministic generator (xorshift32) for fuzz runs that can be replayed from their seed.
 * Not for anything that needs real randomness.
 */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    // xorshift has a fixed point at 0.
    this.state = seed >>> 0 || 0x9e3779b9;
  }

  /** A float in [0, 1). */
  next(): number {
    let x = this.state;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.state = x;
    return x / 0x1_0000_0000;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) {
      throw new RangeError('pick from an empty list');
    }
    return items[this.int(0, items.length - 1)] as T;
  }

  /** `length` random bytes, none of them in `exclude`. */
  bytes(length: number, exclude: readonly number[] = []): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) {
      let byte: number;
      do {
        byte = this.int(0, 255);
      } while (exclude.includes(byte));
      out[i] = byte;
    }
    return out;
  }

  /** A string of `length` characters drawn from `alphabet`. */
  text(length: number, alphabet: string): string {
    let out = '';
    for (let i = 0; i < length; i++) {
      out += alphabet[this.int(0, alphabet.length - 1)];
    }
    return out;
  }
}

/** A non-negative integer from the environment, or the default; names the variable when it is not one. */
export function integerFromEnv(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') {
    return fallback;
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${JSON.stringify(text)}`);
  }
  return value;
}
