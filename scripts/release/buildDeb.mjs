// Builds the Debian package of the single executable with dpkg-deb (no debhelper: one binary and
// a handful of files, laid out here so the tests can read what goes in).
//   node scripts/release/buildDeb.mjs [--binary FILE] [--out DIR] [--fast] [--revision N] [x64|arm64]
// writes DIR/smarthost_<version>-1_<amd64|arm64>.deb (DIR defaults to dist/release) from
// FILE (default DIR/smarthost-linux-<arch>, built by release.mjs when missing) and packaging/deb/.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { NODE_VERSION } from '../nodeBinary.mjs';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PACKAGING = path.join(ROOT, 'packaging', 'deb');

/** Debian's names for Node's architectures. */
export const DEBIAN_ARCH = { x64: 'amd64', arm64: 'arm64' };

/** The Debian revision: the package's first build of each upstream version (--revision: another). */
export const DEBIAN_REVISION = '1';

/**
 * What the official Node.js binary links against (objdump -p: libc, libm, libdl, libpthread,
 * libstdc++, libgcc_s) at the newest symbol versions it uses, the same for x64 and arm64:
 * GLIBC_2.28 (Node.js 24's glibc floor), CXXABI_1.3.11 (GCC 7's libstdc++), GCC_3.4.
 * dpkg-shlibdeps would say libc6 (>= 2.34) only because libdl and libpthread merged into libc
 * there; the binary uses no symbol of either, so Debian 11 (glibc 2.31) takes it too.
 */
export const DEPENDS = 'libc6 (>= 2.28), libgcc-s1 (>= 3.4), libstdc++6 (>= 7)';

const MAINTAINER = 'smarthost maintainers <maintainers@smarthost.invalid>';
const HOMEPAGE = 'https://github.com/smarthost/smarthost';

/**
 * The conffile: smarthost.example.yaml with its relative paths made absolute for the box, the
 * spool and the outbox under /var/lib/smarthost (the unit's StateDirectory), certificates under
 * /etc/smarthost/certs.
 */
export function packagedConfig(example) {
  const config = example.replaceAll('./data/', '/var/lib/smarthost/').replaceAll('./certs/', '/etc/smarthost/certs/');
  if (/:\s+\.\.?\//.test(config)) throw new Error('smarthost.example.yaml has a relative path the package does not place');
  return `# Installed by the smarthost package; dpkg keeps your edits on upgrade.\n${config}`;
}

function changelog(version, date) {
  return `smarthost (${version}) unstable; urgency=medium\n\n  * Package of the smarthost ${version.split('-')[0]} single executable (Node.js ${NODE_VERSION}).\n\n -- ${MAINTAINER}  ${date}\n`;
}

/** package.json's license; the repository has no LICENSE file, so the text is the standard one. */
const MIT = [
  'Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated documentation files (the "Software"), to deal in the Software without restriction, including without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the following conditions:',
  'The above copyright notice and this permission notice shall be included in all copies or substantial portions of the Software.',
  'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.',
];

/** Folds a paragraph into copyright-format continuation lines. */
function fold(paragraph) {
  const lines = [];
  let line = '';
  for (const word of paragraph.split(' ')) {
    if (line && line.length + word.length + 1 > 78) {
      lines.push(` ${line}`);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  return [...lines, ` ${line}`];
}

function copyright(year) {
  return [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    'Upstream-Name: smarthost',
    `Source: ${HOMEPAGE}`,
    `Comment: /usr/bin/smarthost is the official Node.js ${NODE_VERSION} binary (MIT, with the`,
    ` licenses of what it bundles: https://github.com/nodejs/node/blob/v${NODE_VERSION}/LICENSE)`,
    ' carrying smarthost and its npm dependencies bundled by esbuild (MIT, ISC,',
    ' Apache-2.0, BSD-2-Clause, BSD-3-Clause).',
    '',
    'Files: *',
    `Copyright: ${year} smarthost contributors`,
    'License: MIT',
    ...MIT.flatMap((paragraph, index) => [...(index > 0 ? [' .'] : []), ...fold(paragraph)]),
    '',
  ].join('\n');
}

function md5sums(tree) {
  const lines = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      const file = path.join(dir, name);
      if (statSync(file).isDirectory()) {
        if (file !== path.join(tree, 'DEBIAN')) walk(file);
      } else {
        lines.push(`${createHash('md5').update(readFileSync(file)).digest('hex')}  ${path.relative(tree, file)}`);
      }
    }
  };
  walk(tree);
  return `${lines.join('\n')}\n`;
}

function installFile(tree, target, content, mode) {
  const file = path.join(tree, target);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
  chmodSync(file, mode);
}

export function buildDeb({ arch, binary, outDir, fast = false, revision = DEBIAN_REVISION }) {
  const debArch = DEBIAN_ARCH[arch];
  if (!debArch) throw new Error(`unsupported architecture '${arch}' (one of ${Object.keys(DEBIAN_ARCH).join(', ')})`);
  if (!existsSync(binary)) {
    execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'release', 'release.mjs'), '--out', path.dirname(binary), arch], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const { version: upstream } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const version = `${upstream}-${revision}`;
  // The last commit's time: the same tree gives the same changelog and file times.
  const epoch = process.env.SOURCE_DATE_EPOCH ?? execFileSync('git', ['log', '-1', '--format=%ct'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const date = new Date(Number(epoch) * 1000).toUTCString().replace('GMT', '+0000');

  const tree = path.join(outDir, `deb-${debArch}`);
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  chmodSync(tree, 0o755);

  const usrBin = path.join(tree, 'usr', 'bin');
  mkdirSync(usrBin, { recursive: true });
  copyFileSync(binary, path.join(usrBin, 'smarthost'));
  chmodSync(path.join(usrBin, 'smarthost'), 0o755);
  const packaged = (name) => readFileSync(path.join(PACKAGING, name));
  installFile(tree, 'lib/systemd/system/smarthost.service', packaged('smarthost.service'), 0o644);
  installFile(tree, 'usr/lib/sysusers.d/smarthost.conf', packaged('smarthost.sysusers'), 0o644);
  // 0640 from the start: it may hold secrets; postinst gives it the group smarthost.
  installFile(tree, 'etc/smarthost/smarthost.yaml', packagedConfig(readFileSync(path.join(ROOT, 'smarthost.example.yaml'), 'utf8')), 0o640);
  installFile(tree, 'usr/share/doc/smarthost/copyright', copyright(new Date(Number(epoch) * 1000).getUTCFullYear()), 0o644);
  installFile(tree, 'usr/share/doc/smarthost/changelog.Debian.gz', gzipSync(changelog(version, date), { level: 9 }), 0o644);
  installFile(tree, 'usr/share/lintian/overrides/smarthost', packaged('lintian-overrides'), 0o644);

  const installedKiB = Math.ceil(Number(execFileSync('du', ['-sk', '--apparent-size', '--exclude=DEBIAN', tree], { encoding: 'utf8' }).split('\t')[0]));
  const control = [
    'Package: smarthost',
    `Version: ${version}`,
    `Architecture: ${debArch}`,
    `Maintainer: ${MAINTAINER}`,
    `Installed-Size: ${installedKiB}`,
    `Depends: ${DEPENDS}`,
    'Section: mail',
    'Priority: optional',
    `Homepage: ${HOMEPAGE}`,
    'Description: SMTP relay from office devices to Microsoft 365',
    ' Takes anonymous SMTP from scanners, UPSes and NAS boxes on the LAN, spools it',
    ' to disk and delivers it to Exchange Online with OAuth2 (SMTP AUTH XOAUTH2 or',
    ' Microsoft Graph). One self-contained executable; runs as a systemd service.',
    '',
  ].join('\n');
  installFile(tree, 'DEBIAN/control', control, 0o644);
  installFile(tree, 'DEBIAN/conffiles', '/etc/smarthost/smarthost.yaml\n', 0o644);
  for (const script of ['postinst', 'prerm', 'postrm']) installFile(tree, `DEBIAN/${script}`, packaged(script), 0o755);
  installFile(tree, 'DEBIAN/md5sums', md5sums(tree), 0o644);

  const deb = path.join(outDir, `smarthost_${version}_${debArch}.deb`);
  // xz (dpkg-deb's default) makes the 130 MB binary a 30 MB package in about 50 s on two cores;
  // --fast (gzip -1, for the tests) takes a few seconds for a larger file with the same contents.
  const compression = fast ? ['-Zgzip', '-z1'] : [];
  execFileSync('dpkg-deb', ['--root-owner-group', ...compression, '--build', tree, deb], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SOURCE_DATE_EPOCH: epoch } });
  rmSync(tree, { recursive: true, force: true });
  return deb;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({ options: { out: { type: 'string' }, binary: { type: 'string' }, fast: { type: 'boolean' }, revision: { type: 'string' } }, allowPositionals: true });
  const arch = positionals[0] ?? (process.arch === 'arm64' ? 'arm64' : 'x64');
  const outDir = path.resolve(values.out ?? path.join(ROOT, 'dist', 'release'));
  mkdirSync(outDir, { recursive: true });
  const binary = path.resolve(values.binary ?? path.join(outDir, `smarthost-linux-${arch}`));
  process.stdout.write(`${buildDeb({ arch, binary, outDir, fast: values.fast, revision: values.revision })}\n`);
}
