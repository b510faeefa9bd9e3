import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ByteWindow, GRAPH_DEFAULT_RETRY_AFTER_MS, GRAPH_MAILBOX_LIMITS, GRAPH_MAX_MIME_BYTES, GraphMailboxBusyError, GraphMailboxLimiter, graphMailboxLimiter, retryAfterMs } from '../../delivery/graph/graphLimits.ts';

describe("Graph's limits per app and mailbox", () => {
  test('are the documented ones, and the MIME limit is what base64 grows to 4 MB', () => {
    assert.deepEqual(
      [GRAPH_MAILBOX_LIMITS.concurrentRequests, GRAPH_MAILBOX_LIMITS.requests, GRAPH_MAILBOX_LIMITS.requestsWindowMs, GRAPH_MAILBOX_LIMITS.uploadBytes, GRAPH_MAILBOX_LIMITS.uploadWindowMs],
      [4, 10_000, 600_000, 150_000_000, 300_000],
    );
    assert.ok(Math.ceil(GRAPH_MAX_MIME_BYTES / 3) * 4 <= GRAPH_MAILBOX_LIMITS.maxRequestBytes);
    assert.ok(Math.ceil((GRAPH_MAX_MIME_BYTES + 3) / 3) * 4 > GRAPH_MAILBOX_LIMITS.maxRequestBytes);
  });

  test('the upload window takes bytes up to its budget, then frees them as the oldest age out', () => {
    const window = new ByteWindow(100, 1000);
    assert.equal(window.fitsAt(60, 0), 0);
    window.add(60, 0);
    window.add(30, 200);
    assert.equal(window.fitsAt(10, 300), 300, 'exactly the budget fits');
    assert.equal(window.fitsAt(20, 300), 1000, 'waits for the first 60 bytes to age out');
    assert.equal(window.fitsAt(80, 300), 1200, 'needs both gone');
    assert.equal(window.fitsAt(80, 1200), 1200);
  });

  test('at most 4 requests at once; the fifth starts when one ends', async () => {
    const limiter = new GraphMailboxLimiter('relay@contoso.com', { sharedBy: 1 });
    const releases = await Promise.all([1, 2, 3, 4].map(() => limiter.acquire({ bodyBytes: 10, message: true })));
    let fifthStarted = false;
    const fifth = limiter.acquire({ bodyBytes: 10, message: true }).then((release) => {
      fifthStarted = true;
      return release;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(fifthStarted, false);
    releases[0]?.();
    (await fifth)();
    assert.equal(fifthStarted, true);
    for (const release of releases) release();
  });

  test('instances sharing the mailbox each take their part (Lambda instances)', () => {
    const limiter = new GraphMailboxLimiter('relay@contoso.com', { sharedBy: 3, perMinute: 10 });
    assert.deepEqual([limiter.concurrentRequests, limiter.requestsPerWindow, limiter.uploadBytesPerWindow], [1, 3333, 50_000_000]);
  });

  test('the relay per-minute rate makes a message wait for its slot (SendRate), as on the SMTP route', async () => {
    const limiter = new GraphMailboxLimiter('relay@contoso.com', { sharedBy: 1, perMinute: 2, rateWindowMs: 300 });
    const started = performance.now();
    (await limiter.acquire({ bodyBytes: 1, message: true }))();
    (await limiter.acquire({ bodyBytes: 1, message: true }))();
    // A Sent Items lookup is a request but no message: the rate does not hold it.
    (await limiter.acquire({ bodyBytes: 0, message: false }))();
    assert.ok(performance.now() - started < 100);
    (await limiter.acquire({ bodyBytes: 1, message: true }))();
    assert.ok(performance.now() - started >= 290, 'the third message waited for the window');
  });

  test("a message's rate slot counts from Graph's answer (its release), not from the request's start", async () => {
    const limiter = new GraphMailboxLimiter('relay@contoso.com', { sharedBy: 1, perMinute: 1, rateWindowMs: 300 });
    const started = performance.now();
    const release = await limiter.acquire({ bodyBytes: 1, message: true });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const answered = performance.now();
    release();
    (await limiter.acquire({ bodyBytes: 1, message: true }))();
    const waited = performance.now();
    assert.ok(waited - answered >= 290, `the next message waited a window after the answer (${(waited - answered).toFixed(0)} ms), not after the start (${(waited - started).toFixed(0)} ms in all)`);
  });

  test('a Retry-After pause holds every later request until it ends', async () => {
    const limiter = new GraphMailboxLimiter('relay@contoso.com', { sharedBy: 1 });
    limiter.pause(Date.now() + 300);
    const started = performance.now();
    (await limiter.acquire({ bodyBytes: 1, message: true }))();
    assert.ok(performance.now() - started >= 290);
  });

  test('a wait longer than the bound is refused at once and takes nothing', async () => {
    const limiter = new GraphMailboxLimiter('relay@contoso.com', { sharedBy: 1 });
    limiter.pause(Date.now() + 120_000);
    await assert.rejects(limiter.acquire({ bodyBytes: 1, message: true }, 1000), (error: unknown) => {
      assert.ok(error instanceof GraphMailboxBusyError);
      assert.equal(error.why, 'retry-after');
      assert.match(error.message, /not sent/);
      return true;
    });
  });

  test('one limiter per app and mailbox in the process; new settings keep the pause', () => {
    const key = { baseUrl: 'https://graph.example', appId: 'app-x', mailbox: 'Relay@contoso.com' };
    const first = graphMailboxLimiter(key, { sharedBy: 1, perMinute: 30 });
    assert.equal(graphMailboxLimiter({ ...key, mailbox: 'relay@contoso.com' }, { sharedBy: 1, perMinute: 30 }), first);
    first.pause(Date.now() + 60_000);
    const changed = graphMailboxLimiter(key, { sharedBy: 2, perMinute: 30 });
    assert.notEqual(changed, first);
    assert.ok(changed.pauseUntil > Date.now() + 50_000);
    assert.notEqual(graphMailboxLimiter({ ...key, appId: 'other' }, { sharedBy: 1, perMinute: 30 }).pauseUntil > 0, true);
  });

  test('Retry-After in seconds or as an HTTP date; absent: the default', () => {
    assert.equal(retryAfterMs('7'), 7000);
    assert.equal(retryAfterMs(new Date(10_000 + 30_000).toUTCString(), 10_000), 30_000);
    assert.equal(retryAfterMs(null), GRAPH_DEFAULT_RETRY_AFTER_MS);
    assert.equal(retryAfterMs('soon'), GRAPH_DEFAULT_RETRY_AFTER_MS);
  });
});
