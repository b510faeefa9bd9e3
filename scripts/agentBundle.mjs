// The esbuild options of the agent's ESM bundle, for `npm start` (scripts/build.mjs, dist/) and the
// single executable (scripts/release/release.mjs, which embeds the same files as assets).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Code reached only through import() (the AWS SDK of cloud mode, the cloud commands) goes into
 * chunks of its own that a local relay never loads: about 18 MB less resident memory.
 */
export function agentBundleOptions({ outdir, sourcemap }) {
  return {
    entryPoints: { smarthost: path.join(ROOT, 'cli', 'main.ts') },
    outdir,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    // V8 keeps every module's source text for the life of the process: minified, it is 4 MB smaller.
    minify: true,
    keepNames: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    sourcemap,
    logLevel: 'warning',
    // Some dependencies are CommonJS and call require(); give the ESM bundle one. In the single
    // executable the modules' URLs are sea:/…, which createRequire does not take; they require only
    // Node's own modules, which resolve from anywhere.
    banner: {
      js: "import { createRequire as __smarthostCreateRequire } from 'node:module'; const require = __smarthostCreateRequire(import.meta.url.startsWith('file:') ? import.meta.url : process.execPath);",
    },
  };
}
