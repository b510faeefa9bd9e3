import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export interface ProcessBundles {
  /** `smarthost` (the CLI, as `npm start` runs it): pass to startAgentProcess as its entry. */
  agent: string;
}

/**
 * Bundles the current sources the way scripts/build.mjs does (dist/ may be stale), into `dir`.
 * A bundled process starts in about a second where the sources through tsx take about three on
 * a busy two-core machine, and the suite restarts processes many times.
 */
export async function bundleProcesses(dir: string): Promise<ProcessBundles> {
  const source = (path: string) => fileURLToPath(new URL(path, import.meta.url));
  await build({
    entryPoints: { smarthost: source('../../cli/main.ts') },
    outdir: dir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    logLevel: 'warning',
    // Some dependencies are CommonJS and call require(); give the ESM bundle one.
    banner: { js: "import { createRequire as __smarthostCreateRequire } from 'node:module'; const require = __smarthostCreateRequire(import.meta.url);" },
  });
  return { agent: join(dir, 'smarthost.mjs') };
}
