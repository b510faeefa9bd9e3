import assert from 'node:assert/strict';
import { access, appendFile, chmod, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEPENDS, packagedConfig } from '../../scripts/release/buildDeb.mjs';
import { runCommand } from '../../testbed/helpers/agentProcess.ts';
import { makeTempDir } from '../../testbed/helpers/agentHarness.ts';
import packageJson from '../../package.json' with { type: 'json' };

/**
 * The Debian package (scripts/release/buildDeb.mjs) of this machine's single executable: what it
 * holds, and install, upgrade, remove and purge by the real dpkg into a throwaway root
 * (--root with --force-script-chrootless runs the maintainer scripts with DPKG_ROOT set, so they
 * leave systemd alone). Their systemctl calls are run on their own, in a mount namespace where
 * /run/systemd/system exists and systemctl is a stub that records its arguments.
 */

const ROOT = join(import.meta.dirname, '../..');
const RELEASE = join(ROOT, 'scripts/release/release.mjs');
const BUILD_DEB = join(ROOT, 'scripts/release/buildDeb.mjs');
const ARCH = process.arch === 'arm64' ? 'arm64' : 'x64';
const DEB_ARCH = ARCH === 'x64' ? 'amd64' : 'arm64';
const env = { ...process.env };

async function run(command: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const result = await runCommand(command, args, { env });
  assert.equal(result.code, 0, `${command} ${args.join(' ')}: ${result.stderr}`);
  return result;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}

describe('Debian package', () => {
  let dir: string;
  let binary: string;
  const debs: Record<string, string> = {};

  before(async () => {
    // postinst gives the configuration the new group (chgrp) and the systemctl test mounts.
    assert.equal(process.getuid?.(), 0, 'test/release/deb.test.ts runs as root (dpkg --root installs with chgrp; unshare mounts)');
    dir = await makeTempDir('smarthost-deb-');
    await run(process.execPath, [RELEASE, '--out', dir, ARCH]);
    binary = join(dir, `smarthost-linux-${ARCH}`);
    // Two revisions, so the upgrade is a real one from 0.1.0-1 to 0.1.0-2.
    for (const revision of ['1', '2']) {
      const built = await run(process.execPath, [BUILD_DEB, '--fast', '--out', dir, '--binary', binary, '--revision', revision, ARCH]);
      debs[revision] = built.stdout.trim();
      assert.equal(debs[revision], join(dir, `smarthost_${packageJson.version}-${revision}_${DEB_ARCH}.deb`));
    }
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('has the control fields, the conffile and the maintainer scripts', async () => {
    const fields = await run('dpkg-deb', ['--field', debs['1']!, 'Package', 'Version', 'Architecture', 'Depends', 'Section']);
    assert.equal(fields.stdout, `Package: smarthost\nVersion: ${packageJson.version}-1\nArchitecture: ${DEB_ARCH}\nDepends: ${DEPENDS}\nSection: mail\n`);
    assert.equal((await run('dpkg-deb', ['--info', debs['1']!, 'conffiles'])).stdout, '/etc/smarthost/smarthost.yaml\n');
    const control = join(dir, 'control');
    await run('dpkg-deb', ['--control', debs['1']!, control]);
    for (const script of ['postinst', 'prerm', 'postrm']) {
      assert.equal(await readFile(join(control, script), 'utf8'), await readFile(join(ROOT, 'packaging/deb', script), 'utf8'), script);
      assert.equal((await stat(join(control, script))).mode & 0o777, 0o755, script);
    }
  });

  it('holds exactly its files, owned by root, with their modes', async () => {
    const listing = (await run('dpkg-deb', ['--contents', debs['1']!])).stdout.trim().split('\n');
    const files = listing.filter((line) => !line.startsWith('d')).map((line) => {
      const [mode, owner, size, , , file] = line.split(/\s+/);
      return [file, mode, owner, ...(file === './usr/bin/smarthost' ? [Number(size)] : [])];
    });
    assert.deepEqual(files, [
      ['./etc/smarthost/smarthost.yaml', '-rw-r-----', 'root/root'],
      ['./lib/systemd/system/smarthost.service', '-rw-r--r--', 'root/root'],
      ['./usr/bin/smarthost', '-rwxr-xr-x', 'root/root', (await stat(binary)).size],
      ['./usr/lib/sysusers.d/smarthost.conf', '-rw-r--r--', 'root/root'],
      ['./usr/share/doc/smarthost/changelog.Debian.gz', '-rw-r--r--', 'root/root'],
      ['./usr/share/doc/smarthost/copyright', '-rw-r--r--', 'root/root'],
      ['./usr/share/lintian/overrides/smarthost', '-rw-r--r--', 'root/root'],
    ]);
    // /var/lib/smarthost is not in the package: the unit's StateDirectory makes it, and dpkg never
    // owns it, so neither remove nor purge takes the spool with it.
    assert.ok(listing.every((line) => !line.includes('./var/')), listing.join('\n'));
  });

  it('ships the hardened unit, the sysusers entry and the example as the configuration', async () => {
    const tree = join(dir, 'tree');
    await run('dpkg-deb', ['--extract', debs['1']!, tree]);
    const unit = (await readFile(join(tree, 'lib/systemd/system/smarthost.service'), 'utf8')).split('\n');
    for (const line of [
      'ExecStart=/usr/bin/smarthost start --config /etc/smarthost/smarthost.yaml',
      'User=smarthost', 'Group=smarthost',
      'AmbientCapabilities=CAP_NET_BIND_SERVICE', 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE', 'NoNewPrivileges=yes',
      'StateDirectory=smarthost', 'WorkingDirectory=/var/lib/smarthost',
      'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'PrivateDevices=yes', 'RestrictSUIDSGID=yes',
      'SystemCallFilter=@system-service', 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
      'Restart=on-failure', 'Environment=MALLOC_ARENA_MAX=2', 'EnvironmentFile=-/etc/smarthost/smarthost.env',
      'WantedBy=multi-user.target',
    ]) {
      assert.ok(unit.includes(line), `smarthost.service lacks ${line}`);
    }
    assert.equal(await readFile(join(tree, 'usr/lib/sysusers.d/smarthost.conf'), 'utf8'), 'u smarthost - "smarthost SMTP relay" /var/lib/smarthost\n');
    const config = await readFile(join(tree, 'etc/smarthost/smarthost.yaml'), 'utf8');
    assert.equal(config, packagedConfig(await readFile(join(ROOT, 'smarthost.example.yaml'), 'utf8')));
    assert.match(config, /^ {2}dir: \/var\/lib\/smarthost\/spool /m);
    assert.match(config, /^ {2}dir: \/var\/lib\/smarthost\/outbox /m);
    assert.doesNotMatch(config, /: +\.\.?\//);
    const changelog = (await run('sh', ['-c', `gzip -dc '${join(tree, 'usr/share/doc/smarthost/changelog.Debian.gz')}'`])).stdout;
    assert.match(changelog, new RegExp(`^smarthost \\(${packageJson.version}-1\\) unstable; urgency=medium\n`));
    assert.equal((await run(join(tree, 'usr/bin/smarthost'), ['--version'])).stdout.split(' ').slice(0, 2).join(' '), `smarthost ${packageJson.version}`);
  });

  it('install makes the user and the configuration once; upgrade keeps the edited configuration and the spool; remove keeps both; purge keeps only the spool', async () => {
    const root = join(dir, 'root');
    for (const sub of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers', 'etc']) await mkdir(join(root, sub), { recursive: true });
    await writeFile(join(root, 'var/lib/dpkg/status'), '');
    // The throwaway root has no libc6 package to satisfy Depends.
    const dpkg = (...args: string[]) => run('dpkg', [`--root=${root}`, '--force-script-chrootless', '--force-not-root', '--force-depends', ...args]);
    const version = async () => (await run('dpkg-query', [`--root=${root}`, '-W', '-f=${Version} ${db:Status-Status}', 'smarthost'])).stdout;
    const config = join(root, 'etc/smarthost/smarthost.yaml');
    const queued = join(root, 'var/lib/smarthost/spool/queue/0001.eml');

    await dpkg('-i', debs['1']!);
    assert.equal(await version(), `${packageJson.version}-1 installed`);
    const passwd = await readFile(join(root, 'etc/passwd'), 'utf8');
    const user = /^smarthost:x:(\d+):(\d+):[^:]*:\/var\/lib\/smarthost:\/usr\/sbin\/nologin$/m.exec(passwd);
    assert.ok(user, passwd);
    const gid = Number(/^smarthost:x:(\d+):$/m.exec(await readFile(join(root, 'etc/group'), 'utf8'))?.[1]);
    assert.equal(gid, Number(user[2]));
    const installed = await stat(config);
    assert.deepEqual([installed.mode & 0o777, installed.uid, installed.gid], [0o640, 0, gid]);
    assert.equal(await readFile(config, 'utf8'), packagedConfig(await readFile(join(ROOT, 'smarthost.example.yaml'), 'utf8')));
    assert.ok(await exists(join(root, 'usr/bin/smarthost')));

    // What the running service and the admin leave behind.
    await mkdir(join(root, 'var/lib/smarthost/spool/queue'), { recursive: true });
    await writeFile(queued, 'Subject: accepted\r\n\r\nkept\r\n');
    await appendFile(config, 'log: { level: debug }\n');
    const edited = await readFile(config, 'utf8');
    await writeFile(join(root, 'etc/smarthost/smarthost.env'), 'SMARTHOST_CLIENT_SECRET=s\n');
    await chmod(join(root, 'etc/smarthost/smarthost.env'), 0o600);

    await dpkg('-i', debs['2']!);
    assert.equal(await version(), `${packageJson.version}-2 installed`);
    assert.equal(await readFile(config, 'utf8'), edited);
    assert.equal((await stat(config)).gid, gid);
    assert.equal((await readFile(join(root, 'etc/passwd'), 'utf8')).match(/^smarthost:/gm)?.length, 1);
    assert.ok(await exists(queued));

    await dpkg('--remove', 'smarthost');
    assert.equal(await version(), `${packageJson.version}-2 config-files`);
    assert.equal(await exists(join(root, 'usr/bin/smarthost')), false);
    assert.equal(await exists(join(root, 'lib/systemd/system/smarthost.service')), false);
    assert.equal(await readFile(config, 'utf8'), edited);
    assert.ok(await exists(join(root, 'etc/smarthost/smarthost.env')));
    assert.ok(await exists(queued));

    const purged = await dpkg('--purge', 'smarthost');
    assert.equal(await exists(join(root, 'etc/smarthost')), false);
    assert.equal(await readFile(queued, 'utf8'), 'Subject: accepted\r\n\r\nkept\r\n');
    assert.match(purged.stderr, /smarthost: \/var\/lib\/smarthost \(spool and outbox\) kept; remove it by hand/);
    const gone = await runCommand('dpkg-query', [`--root=${root}`, '-W', 'smarthost'], { env });
    assert.equal(gone.code, 1, gone.stdout);
  });

  it('enables on install, restarts on upgrade, stops only on removal, where systemd runs', async () => {
    const control = join(dir, 'scripts');
    await run('dpkg-deb', ['--control', debs['1']!, control]);
    const stubs = join(dir, 'stubs');
    const calls = join(dir, 'calls');
    await mkdir(stubs, { recursive: true });
    for (const command of ['systemctl', 'systemd-sysusers']) {
      await writeFile(join(stubs, command), `#!/bin/sh\necho "${command} $*" >> '${calls}'\n`);
      await chmod(join(stubs, command), 0o755);
    }
    // awk is a symlink through /etc/alternatives, which the tmpfs below hides.
    await symlink((await run('sh', ['-c', 'realpath "$(command -v awk)"'])).stdout.trim(), join(stubs, 'awk'));
    // A private mount namespace: /run/systemd/system exists and /etc is an empty tmpfs with just the
    // group and the configuration, so nothing of this machine's /etc or systemd is touched.
    const scripted = async (script: string, ...args: string[]): Promise<string> => {
      await writeFile(calls, '');
      await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-ec', [
        'mount -t tmpfs tmpfs /run', 'mkdir -p /run/systemd/system', 'mount -t tmpfs tmpfs /etc',
        'mkdir /etc/smarthost', 'echo smarthost:x:999: > /etc/group', ': > /etc/smarthost/smarthost.yaml',
        `PATH='${stubs}':/usr/bin:/bin sh '${join(control, script)}' "$@"`,
      ].join('\n'), 'sh', ...args]);
      return readFile(calls, 'utf8');
    };
    assert.equal(await scripted('postinst', 'configure', ''), 'systemd-sysusers --root=/ smarthost.conf\nsystemctl daemon-reload\nsystemctl enable smarthost.service\n');
    assert.equal(await scripted('postinst', 'configure', `${packageJson.version}-1`), 'systemd-sysusers --root=/ smarthost.conf\nsystemctl daemon-reload\nsystemctl try-restart smarthost.service\n');
    assert.equal(await scripted('prerm', 'upgrade', `${packageJson.version}-2`), '');
    assert.equal(await scripted('prerm', 'remove'), 'systemctl stop smarthost.service\n');
    assert.equal(await scripted('postrm', 'remove'), 'systemctl daemon-reload\n');
  });
});
