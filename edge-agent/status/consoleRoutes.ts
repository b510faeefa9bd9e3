import { messageEnvelopeSchema } from '../../contract/messageEnvelope.ts';
import type { DeliveryEvent } from '../../delivery/history/deliveryEvent.ts';
import type { Logger } from '../logger.ts';
import { deleteMessage, recordRelease, resendFailed } from '../spool/operatorActions.ts';
import type { DeliveryState, FailureRecord, Spool } from '../spool/spool.ts';
import type { SpoolHistory } from '../spool/spoolHistory.ts';
import type { SpoolDeliveryLoop } from '../spool-delivery/spoolDeliveryLoop.ts';
import { arrivalOf } from '../spool/messageId.ts';
import { acceptedOf, failedRow, failedRows, matches, queuedRow, queuedRows, readHeaderFields, type MessageFilters, type MessageRow, type MessageStatus } from './consoleModel.ts';
import type { CsrfTokens } from './csrf.ts';
import { confirmPage, problemPage } from './pages/confirmPage.ts';
import { plural, when } from './pages/format.ts';
import type { Html } from './pages/html.ts';
import { layout, type Section } from './pages/layout.ts';
import { listPage } from './pages/listPage.ts';
import { ACTION_LABELS, messagePage, type MessageView, type OperatorAction } from './pages/messagePage.ts';
import { overviewPage, type Overview } from './pages/overviewPage.ts';
import { STYLESHEET } from './pages/style.ts';
import type { QueueView } from './queueView.ts';
import type { RelayActivity } from './relayActivity.ts';
import { textReply, type HttpReply, type Route, type StatusRequest } from './statusServer.ts';

export interface ConsoleContext {
  spool: Spool;
  history: SpoolHistory;
  /** The embedded delivery loop; absent in cloud mode (the queue is handed to SQS). */
  loop?: SpoolDeliveryLoop;
  /** The queue's counts kept in memory (the overview reads these, never the disk). */
  queue: QueueView;
  activity: RelayActivity;
  /** Messages in failed/, kept from events and recounted with the disk use. */
  failedCount: () => number;
  csrf: CsrfTokens;
  logger: Logger;
  /** Where mail goes: the upstream's host, a secret, the outbox or the SQS queue. */
  upstream: string;
  readyWindowMs: number;
  diskUse: () => Record<string, number>;
  /** Tells the metrics a failed message was resent or deleted. */
  failedChanged: () => void;
}

const NOTICES: Record<string, string> = {
  resend: 'The message is back in the queue and will be sent shortly.',
  release: 'The message will be tried again now.',
  delete: 'The message was deleted. Its history is kept below.',
};

function page(request: StatusRequest, ctx: ConsoleContext, title: string, section: Section, content: Html, status = 200): HttpReply {
  const body = layout({ title, section, who: request.principal.name, relay: ctx.upstream }, content).text;
  return { status, headers: { 'content-type': 'text/html; charset=utf-8' }, body };
}

function filtersOf(request: StatusRequest): MessageFilters {
  const q = request.target.query;
  const value = (key: string) => q.get(key)?.slice(0, 200) || undefined;
  return { device: value('device'), sender: value('sender'), recipient: value('recipient'), status: value('status') };
}

/** The held message the overview names: the oldest (ids sort by arrival). */
function oldestHeld(activity: RelayActivity): { reply?: string; operatorAction?: string } | undefined {
  let oldest: string | undefined;
  for (const id of activity.held.keys()) if (oldest === undefined || id < oldest) oldest = id;
  return oldest === undefined ? undefined : activity.held.get(oldest);
}

/** The one sentence at the top of the overview, and the fix when one is known: from memory, like /metrics. */
export function overviewOf(ctx: ConsoleContext, now = Date.now()): Pick<Overview, 'working' | 'sentence' | 'fix'> {
  const { activity } = ctx;
  const held = oldestHeld(activity);
  if (held) {
    return {
      working: false,
      sentence: `Not working because ${plural(activity.held.size, 'message is', 'messages are')} held until you fix the cause: ${held.reply ?? 'the upstream refused the relay'}.`,
      fix: held.operatorAction,
    };
  }
  const unreachable = activity.upstreamProblem(ctx.readyWindowMs, now);
  if (unreachable) return { working: false, sentence: `Not working because ${unreachable}.` };
  const pausedUntil = ctx.loop?.heldUntil ?? 0;
  if (pausedUntil > now) {
    return { working: false, sentence: `Not working because the upstream asked the relay to slow down; deliveries wait until ${when(pausedUntil, now)}.` };
  }
  const problem = activity.lastProblem;
  const retrying = ctx.queue.waitingForRetry();
  if (problem && retrying > 0 && (activity.lastDeliveredAt ?? 0) < problem.at) {
    return { working: false, sentence: `Not working because the last delivery attempt failed (${problem.reply ?? problem.reason ?? 'no reply'}); ${plural(retrying, 'message waits', 'messages wait')} for a retry.` };
  }
  const failed = ctx.failedCount();
  const tail = failed > 0 ? ` ${plural(failed, 'failed message needs', 'failed messages need')} a decision.` : '';
  if (activity.lastDeliveredAt) return { working: true, sentence: `Working: mail is being delivered, the last at ${when(activity.lastDeliveredAt, now)}.${tail}` };
  return { working: true, sentence: `Working: ready to deliver to ${ctx.upstream}; nothing delivered since the relay started.${tail}` };
}

/** Answered from memory (no spool reads): a monitor may poll it every second. */
function overview(request: StatusRequest, ctx: ConsoleContext): HttpReply {
  const oldestId = ctx.queue.oldestId();
  const view: Overview = {
    ...overviewOf(ctx),
    queued: ctx.queue.depth(),
    held: ctx.activity.held.size,
    failed: ctx.failedCount(),
    lastAcceptedAt: ctx.activity.lastAcceptedAt,
    lastDeliveredAt: ctx.activity.lastDeliveredAt,
    oldestQueuedAt: oldestId ? arrivalOf(oldestId)?.getTime() : undefined,
    diskUse: ctx.diskUse(),
    upstream: ctx.upstream,
  };
  return page(request, ctx, 'Overview', 'overview', overviewPage(view));
}

async function list(request: StatusRequest, ctx: ConsoleContext, which: 'queue' | 'failed'): Promise<HttpReply> {
  const all = which === 'queue' ? await queuedRows(ctx.spool) : await failedRows(ctx.spool);
  const filters = filtersOf(request);
  const statuses: MessageStatus[] = which === 'queue' ? ['new', 'retrying', 'held'] : ['failed'];
  const rows = all.filter((row) => matches(row, filters));
  const title = which === 'queue' ? 'Queue' : 'Failed messages';
  return page(request, ctx, title, which, listPage({ title, action: which === 'queue' ? '/queue' : '/failed', rows, total: all.length, filters, statuses }));
}

interface Located {
  where: 'queue' | 'failed' | 'history';
  view: Omit<MessageView, 'actions' | 'canSeeBody' | 'notice'>;
  envelope?: Parameters<Spool['remove']>[0];
}

async function locate(ctx: ConsoleContext, id: string): Promise<Located | undefined> {
  if (!messageEnvelopeSchema.shape.id.safeParse(id).success) return undefined;
  try {
    const inSpool = await locateInSpool(ctx, id);
    if (inSpool) return inSpool;
  } catch (error) {
    // Delivered (or moved) while its files were being read: its history says where it went.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return locateInHistory(id, await ctx.history.read(id));
}

async function locateInSpool(ctx: ConsoleContext, id: string): Promise<Located | undefined> {
  // Never findMessage here: a body stream opened only to be thrown away raised an uncaught ENOENT
  // when the delivery loop removed the file first (resend, then the redirect to this page).
  const found = await ctx.spool.locateMessage(id);
  if (found) {
    const history: DeliveryEvent[] = await ctx.history.read(id);
    const { envelope, where } = found;
    let row: MessageRow;
    let delivered: string[];
    if (where === 'queue') {
      const state: DeliveryState | undefined = await ctx.spool.readState(id);
      row = queuedRow(envelope, state);
      delivered = state?.deliveredRcpts ?? [];
    } else {
      const failure = (await ctx.spool.readFailure(id)) as FailureRecord;
      row = failedRow(envelope, failure);
      delivered = failure.state.deliveredRcpts;
    }
    const headers = await readHeaderFields(where === 'queue' ? ctx.spool.queueDir : ctx.spool.failedDir, id, envelope.size);
    const heldDetail = ctx.activity.held.get(id);
    return {
      where,
      envelope,
      view: {
        ...row,
        helo: envelope.helo,
        mailFrom: envelope.mailFrom,
        sendAs: envelope.sendAs,
        recipients: envelope.rcptTo,
        delivered,
        reason: row.reason ?? heldDetail?.reason ?? lastAttemptReason(history),
        headers,
        history,
      },
    };
  }
  return undefined;
}

/** The reason the last attempt gave (a held message's state keeps the reply and the fix, not the reason). */
function lastAttemptReason(history: DeliveryEvent[]): string | undefined {
  for (let i = history.length - 1; i >= 0; i--) {
    const event = history[i] as DeliveryEvent;
    if (event.type === 'attempt') return event.reason;
  }
  return undefined;
}

function locateInHistory(id: string, history: DeliveryEvent[]): Located | undefined {
  const accepted = acceptedOf(history);
  if (!accepted) return undefined;
  const delivered = history.flatMap((e) => (e.type === 'attempt' ? e.accepted : []));
  return {
    where: 'history',
    view: {
      id,
      status: 'done',
      receivedAt: accepted.at,
      device: accepted.client.name,
      ip: accepted.client.ip,
      helo: accepted.helo,
      mailFrom: accepted.mailFrom,
      sendAs: accepted.sendAs,
      recipients: accepted.rcptTo,
      delivered,
      size: accepted.size,
      history,
    },
  };
}

function actionsFor(located: Located, ctx: ConsoleContext): OperatorAction[] {
  if (located.where === 'failed') return ['resend', 'delete'];
  if (located.where === 'queue' && ctx.loop) return located.view.status === 'new' ? ['delete'] : ['release', 'delete'];
  return [];
}

async function messageView(request: StatusRequest, ctx: ConsoleContext): Promise<HttpReply> {
  const id = request.params.id as string;
  const located = await locate(ctx, id);
  if (!located) return page(request, ctx, 'Not found', 'none', problemPage('No such message', `Nothing is known about ${id}: not a message of this relay, or done longer ago than spool.historyRetention.`), 404);
  const done = request.target.query.get('done') ?? '';
  const view: MessageView = { ...located.view, actions: actionsFor(located, ctx), canSeeBody: request.principal.authenticated, notice: NOTICES[done] };
  return page(request, ctx, `Message ${id}`, located.where === 'failed' ? 'failed' : located.where === 'queue' ? 'queue' : 'none', messagePage(view));
}

async function messageBody(request: StatusRequest, ctx: ConsoleContext): Promise<HttpReply> {
  const id = request.params.id as string;
  if (!request.principal.authenticated) {
    return textReply(403, 'Message bodies are shown only to an operator who signed in: configure status.auth.');
  }
  const found = await ctx.spool.findMessage(id);
  if (!found) return textReply(404, 'No such queued or failed message.');
  ctx.logger.info({ messageId: id, by: request.principal.name, ip: request.ip }, 'operator downloaded a message');
  return { status: 200, headers: { 'content-type': 'message/rfc822', 'content-disposition': `attachment; filename="${id}.eml"` }, body: found.body };
}

function actionOf(text: string | null | undefined): OperatorAction | undefined {
  return text === 'resend' || text === 'release' || text === 'delete' ? text : undefined;
}

async function confirm(request: StatusRequest, ctx: ConsoleContext): Promise<HttpReply> {
  const id = request.params.id as string;
  const action = actionOf(request.target.query.get('action'));
  if (!action) return textReply(400, 'Unknown action.');
  const located = await locate(ctx, id);
  if (!located || !actionsFor(located, ctx).includes(action)) {
    return page(request, ctx, 'Not possible', 'none', problemPage(`${ACTION_LABELS[action]} is not possible`, `Message ${id} is not in a state that allows it any more.`), 409);
  }
  const v = located.view;
  const summary = `From ${v.sendAs ?? (v.mailFrom || '<>')} (device ${v.device}) to ${v.recipients.join(', ')}, received ${when(v.receivedAt)}.`;
  return page(request, ctx, `${ACTION_LABELS[action]}?`, 'none', confirmPage(id, action, ctx.csrf.issue(request.principal.name, id), summary));
}

/** A form posted from another site (a page the operator's browser happened to open) is refused. */
function crossSite(request: StatusRequest): boolean {
  if (request.headers['sec-fetch-site'] === 'cross-site') return true;
  const origin = request.headers.origin;
  if (!origin || origin === 'null') return origin === 'null';
  try {
    return new URL(origin).host !== request.headers.host;
  } catch {
    return true;
  }
}

async function act(request: StatusRequest, ctx: ConsoleContext): Promise<HttpReply> {
  const id = request.params.id as string;
  const action = actionOf(request.params.action);
  if (!action) return textReply(404, 'Not found.');
  if (crossSite(request) || !ctx.csrf.verify(request.principal.name, id, request.form.get('csrf') ?? undefined)) {
    return textReply(403, 'This form is out of date or came from another site: reload the message page and try again.');
  }
  if (request.form.get('confirm') !== 'yes') return textReply(400, 'Not confirmed.');
  const located = await locate(ctx, id);
  if (!located || !actionsFor(located, ctx).includes(action)) {
    return page(request, ctx, 'Not possible', 'none', problemPage(`${ACTION_LABELS[action]} is not possible`, `Message ${id} is not in a state that allows it any more.`), 409);
  }
  const by = `${request.principal.name} (console, ${request.ip})`;
  const historyProblem = (error: Error) => ctx.logger.warn({ messageId: id, err: error.message }, 'could not record the operator action in the history');
  if (action === 'resend') {
    const envelope = await resendFailed(ctx.spool, ctx.history, id, by, historyProblem);
    ctx.loop?.requeued(envelope);
    ctx.failedChanged();
  } else if (action === 'release') {
    if (!ctx.loop?.release(id)) return page(request, ctx, 'Busy', 'none', problemPage('Being delivered', `Message ${id} is being delivered right now; look again in a moment.`), 409);
    await recordRelease(ctx.history, id, by, historyProblem);
  } else {
    if (located.where === 'queue' && !ctx.loop?.forget(id)) {
      return page(request, ctx, 'Busy', 'none', problemPage('Being delivered', `Message ${id} is being delivered right now and cannot be deleted; look again in a moment.`), 409);
    }
    await deleteMessage(ctx.spool, ctx.history, located.envelope as NonNullable<Located['envelope']>, located.where === 'queue' ? 'queue' : 'failed', by, historyProblem);
    ctx.activity.forget(id);
    if (located.where === 'failed') ctx.failedChanged();
  }
  ctx.logger.info({ messageId: id, action, by: request.principal.name, ip: request.ip }, 'operator action');
  return { status: 303, headers: { location: `/messages/${id}?done=${action}` }, body: '' };
}

/** The web console: overview, queue and failed lists, a message's page and the operator's actions. */
export function consoleRoutes(ctx: ConsoleContext): Route[] {
  return [
    { path: [], methods: { GET: (r) => overview(r, ctx) } },
    { path: ['style.css'], methods: { GET: () => ({ status: 200, headers: { 'content-type': 'text/css; charset=utf-8' }, body: STYLESHEET }) } },
    { path: ['queue'], methods: { GET: (r) => list(r, ctx, 'queue') } },
    { path: ['failed'], methods: { GET: (r) => list(r, ctx, 'failed') } },
    { path: ['messages', ':id'], methods: { GET: (r) => messageView(r, ctx) } },
    { path: ['messages', ':id', 'body'], methods: { GET: (r) => messageBody(r, ctx) } },
    { path: ['messages', ':id', 'confirm'], methods: { GET: (r) => confirm(r, ctx) } },
    { path: ['messages', ':id', ':action'], methods: { POST: (r) => act(r, ctx) } },
  ];
}
