import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { serverCert, serverKey } from '../../testbed/fakes/tlsFixtures.ts';
import { makeTempDir } from '../../testbed/helpers/agentHarness.ts';
import { CATALOGUE, SHARED } from './catalogue.ts';
import { AgentPool, assertStillServes, newMessages, outboxMessages, runEntry, spoolTmpEmpties } from './runEntry.ts';
import type { Outcome, SetupFiles } from './types.ts';

const ERROR_LEVEL = 50;

const expected = CATALOGUE.filter((entry) => !entry.knownIssue);
const refusedCount = expected.filter((entry) => entry.outcome !== 'passed through').length;

describe('bad input catalogue', () => {
  let dir: string;
  let files: SetupFiles;
  let pool: AgentPool;
  const handled: Record<Outcome, number> = { refused: 0, defused: 0, 'passed through': 0 };

  before(async () => {
    dir = await makeTempDir('smarthost-bad-input-');
    files = { tlsCert: join(dir, 'server.crt'), tlsKey: join(dir, 'server.key') };
    await writeFile(files.tlsCert, serverCert);
    await writeFile(files.tlsKey, serverKey, { mode: 0o600 });
    pool = new AgentPool(files);
  });

  after(async () => {
    await pool?.disposeAll();
    if (dir) {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('the catalogue holds at least 40 inputs, each named once', () => {
    assert.ok(CATALOGUE.length >= 40, `${CATALOGUE.length} entries`);
    assert.equal(new Set(CATALOGUE.map((entry) => entry.name)).size, CATALOGUE.length, 'names are unique');
  });

  for (const [index, entry] of CATALOGUE.entries()) {
    const setup = entry.setup ?? SHARED;
    test(`${entry.name} [${setup.name}]: ${entry.why}`, { todo: entry.knownIssue, timeout: 60_000 }, async () => {
      const agent = await pool.get(setup);
      const outboxBefore = await outboxMessages(agent);
      const logMark = agent.logs.lines.length;

      await runEntry(entry, agent, files);

      await agent.deliveryLoop.whenIdle();
      const stored = (entry.stored ?? []).map((bytes) => (typeof bytes === 'string' ? bytes : bytes.toString('latin1')));
      assert.deepEqual(await newMessages(agent, outboxBefore), stored, 'messages this input left in the outbox');
      await spoolTmpEmpties(agent);
      await assertStillServes(agent, `entry ${index + 1}`);
      const errors = agent.logs.lines.slice(logMark).filter((line) => (JSON.parse(line) as { level: number }).level >= ERROR_LEVEL);
      assert.deepEqual(errors, [], 'no error logged');
      if (!entry.knownIssue) {
        handled[entry.outcome] += 1;
      }
    });
  }

  test(`bad inputs refused: ${refusedCount}`, (t) => {
    const passed = expected.length - refusedCount;
    assert.equal(handled.refused + handled.defused, refusedCount, 'every entry expected to be refused or defused was');
    assert.equal(handled['passed through'], passed, 'every entry expected to pass through did');
    t.diagnostic(
      `bad inputs refused: ${refusedCount} (${handled.refused} refused, ${handled.defused} defused as text); ` +
        `${passed} passed through by design; ${CATALOGUE.length - expected.length} known issues (todo); ${CATALOGUE.length} inputs in all`,
    );
  });
});
