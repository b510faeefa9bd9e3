import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseByteSize } from '../../delivery/byteSize.ts';

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;

describe('parseByteSize', () => {
  const valid: readonly [string | number, number][] = [
    ['35MB', 35 * MIB],
    ['512KB', 512 * KIB],
    ['1GB', GIB],
    ['100', 100],
    ['100B', 100],
    ['35MiB', 35 * MIB],
    ['512KiB', 512 * KIB],
    ['1GiB', GIB],
    ['35mb', 35 * MIB],
    ['35 MB', 35 * MIB],
    ['1kib', KIB],
    ['2k', 2 * KIB],
    ['1.5MB', 1.5 * MIB],
    ['0', 0],
    [0, 0],
    [157286400, 157286400],
  ];
  for (const [text, bytes] of valid) {
    it(`reads ${JSON.stringify(text)} as ${bytes} bytes`, () => {
      assert.equal(parseByteSize(text), bytes);
    });
  }

  it('rounds a fraction of a byte down', () => {
    assert.equal(parseByteSize('0.5KB'), 512);
    assert.equal(parseByteSize('1.0001KB'), 1024);
  });

  const invalid = ['', 'MB', '35TB', '-1MB', '35 M B', '1e3', 'ten', '35MBs', '9999999999999GB'];
  for (const text of invalid) {
    it(`refuses ${JSON.stringify(text)} with a RangeError naming it`, () => {
      assert.throws(
        () => parseByteSize(text),
        (error: unknown) => error instanceof RangeError && error.message.includes(JSON.stringify(text)),
      );
    });
  }

  for (const value of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    it(`refuses the number ${value}`, () => {
      assert.throws(() => parseByteSize(value), (error: unknown) => error instanceof RangeError && error.message.includes(String(value)));
    });
  }
});
