// Bundles the agent into dist/smarthost.mjs and dist/chunks/ (scripts/agentBundle.mjs): no
// TypeScript loader at run time, which keeps a running agent about 50 MB smaller than running the
// sources through tsx.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';
import { agentBundleOptions } from './agentBundle.mjs';

// Only what this build writes: dist/release/ (npm run release) stays.
for (const output of ['chunks', 'smarthost.mjs', 'smarthost.mjs.map']) {
  await rm(path.join('dist', output), { recursive: true, force: true });
}
await build(agentBundleOptions({ outdir: 'dist', sourcemap: true }));
