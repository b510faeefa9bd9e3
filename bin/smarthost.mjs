#!/usr/bin/env node
// The CLI from the TypeScript sources through tsx's loader, so `npx smarthost` works right after
// `npm ci` with no build step to forget. `npm start` runs the bundled build (dist/) instead.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
