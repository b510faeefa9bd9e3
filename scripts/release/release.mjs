// Builds the single executables: the agent's ESM bundle (the same files `npm start` runs,
// scripts/agentBundle.mjs) embedded as the blob's assets behind a small CommonJS loader
// (seaLoader.cjs, the one script a single executable runs), turned into a blob by the pinned Node.js
// of the target architecture and injected into a copy of that Node.js with postject.
//   node scripts/release/release.mjs [--out DIR] [x64] [arm64]
// writes DIR/smarthost-linux-<arch> (DIR defaults to dist/release, both architectures by default).
// Each blob is made by its own architecture's Node.js: arm64 on an x64 machine under qemu-user
// (qemu-aarch64-static).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { inject } from 'postject';
import { agentBundleOptions } from '../agentBundle.mjs';
import { ARCHITECTURES, nodeBinary } from '../nodeBinary.mjs';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Fixed by Node.js: the fuse postject flips so the binary looks for its blob. */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/**
 * Where qemu-user finds the arm64 C and C++ runtime the arm64 Node.js links against: QEMU_LD_PREFIX
 * when set, else Debian's cross libraries (apt install libc6-arm64-cross libstdc++6-arm64-cross),
 * else the arm64 Debian root scripts/container/buildImage.sh arm64 leaves in .cache/container/.
 */
function arm64Root() {
  const candidates = [process.env.QEMU_LD_PREFIX, '/usr/aarch64-linux-gnu', path.join(ROOT, '.cache', 'container', 'bookworm-arm64')];
  const root = candidates.find((dir) => dir && existsSync(path.join(dir, 'lib', 'ld-linux-aarch64.so.1')));
  if (!root) throw new Error('no arm64 runtime for qemu-user: apt install libc6-arm64-cross libstdc++6-arm64-cross, or set QEMU_LD_PREFIX to an arm64 root');
  return root;
}

/** Runs the target's Node.js here: directly on its own CPU, through qemu-user on another. */
function nodeCommand(arch) {
  const node = nodeBinary(arch);
  if (arch === process.arch) return [node];
  if (arch === 'arm64') return ['qemu-aarch64-static', '-L', arm64Root(), node];
  throw new Error(`cannot run the ${arch} Node.js on ${process.arch} to make its blob`);
}

/** The agent's ESM bundle in `dir`; returns the asset map: each .mjs by its path below `dir`. */
async function bundle(dir) {
  await build(agentBundleOptions({ outdir: dir, sourcemap: false }));
  const assets = {};
  for (const name of readdirSync(dir, { recursive: true })) {
    if (String(name).endsWith('.mjs')) assets[String(name).split(path.sep).join('/')] = path.join(dir, String(name));
  }
  return assets;
}

async function release(outDir, arches) {
  const work = path.join(outDir, 'work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const assets = await bundle(path.join(work, 'bundle'));
  for (const arch of arches) {
    const blob = path.join(work, `sea-${arch}.blob`);
    const seaConfig = path.join(work, `sea-${arch}.json`);
    writeFileSync(seaConfig, JSON.stringify({ main: path.join(ROOT, 'scripts', 'release', 'seaLoader.cjs'), output: blob, disableExperimentalSEAWarning: true, assets }));
    const [command, ...args] = nodeCommand(arch);
    execFileSync(command, [...args, '--experimental-sea-config', seaConfig], { stdio: ['ignore', 'ignore', 'inherit'] });
    const executable = path.join(outDir, `smarthost-linux-${arch}`);
    copyFileSync(nodeBinary(arch), executable);
    chmodSync(executable, 0o755);
    await inject(executable, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE });
    process.stdout.write(`${executable}\n`);
  }
  rmSync(work, { recursive: true, force: true });
}

const { values, positionals } = parseArgs({ options: { out: { type: 'string' } }, allowPositionals: true });
const arches = positionals.length > 0 ? positionals : ARCHITECTURES;
for (const arch of arches) {
  if (!ARCHITECTURES.includes(arch)) throw new Error(`unsupported architecture '${arch}' (one of ${ARCHITECTURES.join(', ')})`);
}
await release(path.resolve(values.out ?? path.join(ROOT, 'dist', 'release')), arches);
