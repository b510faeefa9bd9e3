import assert from 'node:assert/strict';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { makeTempDir, startTestAgent, waitForAttempt, type TestAgent } from '../../testbed/helpers/agentHarness.ts';
import { HELD_FIX, seedSpool, type SeededSpool } from './seedSpool.ts';

/** Debian's chromium (.ci/run installs it); playwright's own browser download does not work here. */
const CHROMIUM = process.env.SMARTHOST_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOTS = join(import.meta.dirname, '../../test-output/screenshots');
const USER = 'office-admin';
const PASSWORD = 'console-pass-123';

describe('web console in a real browser (headless chromium)', () => {
  let agent: TestAgent;
  let seeded: SeededSpool;
  let browser: Browser;
  let context: BrowserContext;
  let base: string;
  let dir: string | undefined;

  before(async () => {
    await mkdir(SCREENSHOTS, { recursive: true });
    dir = await makeTempDir();
    seeded = await seedSpool(join(dir, 'spool'));
    agent = await startTestAgent({ status: { host: '127.0.0.1', port: 0, auth: { username: USER, password: PASSWORD } } }, {}, dir);
    base = `http://127.0.0.1:${agent.status?.address.port}`;
    // Root in CI containers: chromium's sandbox needs user namespaces it may not have there.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    context = await browser.newContext({ httpCredentials: { username: USER, password: PASSWORD }, viewport: { width: 1280, height: 860 }, javaScriptEnabled: false });
  });
  after(async () => {
    // In order: no page asks for more, the agent finishes its requests and deliveries, then its folder goes.
    await context?.close();
    await browser?.close();
    await agent?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('says in one sentence why the relay is not working, and counts the queue, held and failed', async () => {
    const page = await context.newPage();
    const response = await page.goto(`${base}/`);
    assert.equal(response?.status(), 200);
    const sentence = await page.locator('#overview-sentence').innerText();
    assert.match(sentence, /^Not working because 1 message is held until you fix the cause: 550 5\.7\.60 SMTP; Client does not have permissions to send as this sender\./);
    assert.ok(sentence.includes(HELD_FIX), sentence);
    assert.deepEqual(await page.locator('.card .n').allInnerTexts(), ['2', '1', '1']);
    await page.screenshot({ path: join(SCREENSHOTS, 'overview.png'), fullPage: true });
  });

  it('filters the queue by device, and by status', async () => {
    const page = await context.newPage();
    await page.goto(`${base}/queue`);
    assert.equal(await page.locator('tbody tr').count(), 2);
    await page.fill('input[name=device]', 'scanner');
    await page.click('form.filters button[type=submit]');
    assert.equal(new URL(page.url()).searchParams.get('device'), 'scanner');
    assert.equal(await page.locator('tbody tr').count(), 1);
    assert.match(await page.locator('tbody tr').innerText(), /scanner-2f/);
    assert.equal(await page.locator('#count').innerText(), '1 of 2 messages match.');
    await page.goto(`${base}/queue?status=held`);
    assert.equal(await page.locator('tbody tr').count(), 1);
    assert.match(await page.locator('tbody tr').innerText(), /fax@contoso\.com/);
    await page.goto(`${base}/queue?recipient=nobody@contoso.com`);
    assert.equal(await page.locator('.empty').innerText(), 'No message matches these filters.');
    await page.goto(`${base}/queue`);
    await page.screenshot({ path: join(SCREENSHOTS, 'queue.png'), fullPage: true });
  });

  it("shows a held message's envelope, headers, history and the fix, without its body", async () => {
    const page = await context.newPage();
    await page.goto(`${base}/queue?status=held`);
    await page.click('tbody tr a');
    assert.equal(new URL(page.url()).pathname, `/messages/${seeded.held.id}`);
    assert.ok((await page.locator('#fix').innerText()).includes(HELD_FIX));
    assert.match(await page.locator('#headers').innerText(), /Subject\s+Fax from \+49 30 1234567/);
    const history = await page.locator('#history li').allInnerTexts();
    assert.equal(history.length, 3);
    assert.match(history[0] as string, /accepted/);
    assert.match(history[2] as string, /#2 via smtp smtp\.office365\.com:587 as relay@contoso\.com.*held for the operator/s);
    assert.equal(await page.content().then((html) => html.includes('The scanned document is attached')), false, 'the body is not on the page');
    await page.screenshot({ path: join(SCREENSHOTS, 'message-held.png'), fullPage: true });
  });

  it('resends a failed message after confirmation, recording who did it', async () => {
    const page = await context.newPage();
    await page.goto(`${base}/failed`);
    await page.click('tbody tr a');
    await page.click('text=Resend…');
    assert.match(await page.locator('h1').innerText(), new RegExp(`^Resend message ${seeded.failed.id}\\?$`));
    await page.screenshot({ path: join(SCREENSHOTS, 'confirm-resend.png'), fullPage: true });
    const delivered = waitForAttempt(agent, (r) => r.id === seeded.failed.id && r.action === 'delivered');
    await page.click('#confirm');
    assert.equal(new URL(page.url()).pathname, `/messages/${seeded.failed.id}`);
    assert.equal(await page.locator('#notice').innerText(), 'The message is back in the queue and will be sent shortly.');
    await delivered;
    await page.reload();
    const history = await page.locator('#history li').allInnerTexts();
    assert.ok(history.some((line) => /operator\s+resend by office-admin \(console, 127\.0\.0\.1\)/.test(line)), history.join('\n'));
    assert.match(history.at(-1) as string, /#1 via outbox.*delivered to it-alrets@contoso\.com; done/s);
    await page.screenshot({ path: join(SCREENSHOTS, 'message-resent.png'), fullPage: true });
    const logged = agent.logs.records().find((r) => r.msg === 'operator action');
    assert.deepEqual([logged?.messageId, logged?.action, logged?.by], [seeded.failed.id, 'resend', USER]);
    const archived = await readFile(join(agent.config.spool.dir, 'history', `${seeded.failed.id}.history.jsonl`), 'utf8');
    assert.match(archived, /"type":"operator".*"action":"resend","by":"office-admin \(console, 127\.0\.0\.1\)"/);
  });

  it('refuses a resend posted without the form token (CSRF)', async () => {
    const response = await fetch(`${base}/messages/${seeded.held.id}/delete`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'confirm=yes&csrf=forged',
    });
    assert.equal(response.status, 403);
    const page = await context.newPage();
    await page.goto(`${base}/messages/${seeded.held.id}`);
    assert.match(await page.locator('.status').first().innerText(), /held for you/);
  });
});
