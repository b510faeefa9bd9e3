#!/usr/bin/env node
// The CLI is TypeScript run through tsx's loader, so `npx smarthost` works right after `npm ci`
// with no build step to forget.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../edge-agent/cli.ts');
// Exit explicitly: a stopped agent has nothing left to do, whatever handle a library leaves open.
process.exit(await main(process.argv.slice(2)));
