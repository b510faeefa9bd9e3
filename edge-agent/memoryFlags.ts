import { setFlagsFromString } from 'node:v8';

/**
 * Imported first by main.ts, before any other module is evaluated: loading the bundle allocates
 * enough to grow V8's young generation to its 16 MB semi-spaces (32 MB resident) for good. For
 * the relay (`start`) it stays at its initial size, and `gc` is exposed for the memory governor.
 * Other commands run for a moment and keep V8's defaults.
 */
if (process.argv[2] === 'start') {
  setFlagsFromString('--semi-space-growth-factor=1');
  setFlagsFromString('--expose-gc');
}
