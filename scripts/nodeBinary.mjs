// Fetches the pinned Node.js binary for one Linux architecture from the npm registry
// (node-linux-<arch>) into .cache/node/ and prints its path. `npm pack` downloads the tarball
// without installing it, so the arm64 binary can be fetched on an x64 machine (installing it would
// fail npm's cpu check). CI runs the suite with it; the release script embeds it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The Node.js 24 LTS release CI tests on and the single executables are built from. */
export const NODE_VERSION = '24.22.3';
export const ARCHITECTURES = ['x64', 'arm64'];

const CACHE_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '.cache', 'node');

/** Path of the `node` binary for `arch`, downloaded on first use. */
export function nodeBinary(arch) {
  if (!ARCHITECTURES.includes(arch)) {
    throw new Error(`unsupported architecture '${arch}' (one of ${ARCHITECTURES.join(', ')})`);
  }
  const dir = path.join(CACHE_DIR, `${NODE_VERSION}-${arch}`);
  const binary = path.join(dir, 'node');
  if (existsSync(binary)) {
    return binary;
  }
  const work = `${dir}.tmp`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const tarball = execFileSync('npm', ['pack', '--silent', `node-linux-${arch}@${NODE_VERSION}`], { cwd: work, encoding: 'utf8' }).trim();
  execFileSync('tar', ['-xzf', tarball, '--strip-components=2', 'package/bin/node'], { cwd: work });
  rmSync(path.join(work, tarball));
  rmSync(dir, { recursive: true, force: true });
  renameSync(work, dir);
  return binary;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${nodeBinary(process.argv[2] ?? process.arch)}\n`);
}
