import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { loadConfigFromText } from '../../edge-agent/config/loadConfig.ts';

/**
 * What the Dockerfile relies on, checked without Docker (scripts/container/checkImage.ts runs the
 * image): the files it takes from the build context are in the repository, and the built-in
 * config keeps mail on the volume and gives the HEALTHCHECK its status listener.
 */

const ROOT = join(import.meta.dirname, '../..');
const run = promisify(execFile);

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions(): { keyword: string; args: string }[] {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

/** The paths git tracks among `paths` (an ignored file exists here but not in a clone). */
async function tracked(paths: string[]): Promise<string[]> {
  const { stdout } = await run('git', ['ls-files', '--', ...paths], { cwd: ROOT });
  return stdout.split('\n').filter(Boolean);
}

describe('Dockerfile', () => {
  const all = instructions();
  const lastFrom = all.map((instruction) => instruction.keyword).lastIndexOf('FROM');
  const finalStage = all.slice(lastFrom);

  it('copies from the build context and runs only files the repository holds', async () => {
    const fromContext = all
      .filter((instruction) => instruction.keyword === 'COPY' && !instruction.args.includes('--from='))
      .flatMap((instruction) => instruction.args.split(/\s+/).filter((arg) => !arg.startsWith('--')).slice(0, -1))
      .filter((source) => source !== '.');
    const scripts = all
      .filter((instruction) => instruction.keyword === 'RUN')
      .flatMap((instruction) => [...instruction.args.matchAll(/\bnode (\S+\.m?js)\b/g)].map((match) => match[1]!));
    assert.deepEqual(fromContext, ['package.json', 'package-lock.json', 'packaging/container/smarthost.yaml']);
    assert.deepEqual(scripts, ['scripts/release/release.mjs']);
    assert.deepEqual(await tracked([...fromContext, ...scripts]), [...fromContext, ...scripts].sort());
  });

  it('runs the final image as 65532 with the spool a volume and smarthost healthcheck as HEALTHCHECK', () => {
    const args = (keyword: string) => finalStage.filter((instruction) => instruction.keyword === keyword).map((instruction) => instruction.args);
    assert.deepEqual(args('USER'), ['65532:65532']);
    assert.deepEqual(args('VOLUME'), ['["/var/lib/smarthost"]']);
    assert.deepEqual(args('HEALTHCHECK'), ['--interval=30s --timeout=10s --start-period=10s --retries=3 CMD ["/usr/bin/smarthost", "healthcheck"]']);
    assert.deepEqual(args('ENTRYPOINT'), ['["/usr/bin/smarthost"]']);
    assert.deepEqual(args('CMD'), ['["start"]']);
  });

  it('builds in a config that keeps mail on the volume and has the status listener the HEALTHCHECK asks', () => {
    const text = readFileSync(join(ROOT, 'packaging/container/smarthost.yaml'), 'utf8');
    const config = loadConfigFromText(text, { baseDir: '/etc/smarthost', env: {} });
    assert.equal(config.spool.dir, '/var/lib/smarthost/spool');
    assert.equal(config.outbox.dir, '/var/lib/smarthost/outbox');
    assert.deepEqual([config.listen.host, config.listen.port], ['0.0.0.0', 2525]);
    assert.deepEqual([config.status?.host, config.status?.port], ['127.0.0.1', 8025]);
    assert.equal(config.upstream, undefined);
  });
});
