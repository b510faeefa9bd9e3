import type { WebhookFormat } from '../config/alertsSchema.ts';
import type { AlertNotice, AlertOrigin } from './alertNotice.ts';

/** The plain JSON POST: stable field names for scripts and monitoring tools. */
export interface JsonAlertPayload {
  source: 'smarthost';
  host: string;
  kind: 'raised' | 'cleared';
  condition: string;
  title: string;
  detail: string;
  fix?: string;
  at: string;
  since?: string;
}

/** The notice's one-line headline, as a subject, a chat title or a Slack fallback text. */
export function headline(notice: AlertNotice, origin: AlertOrigin): string {
  return notice.kind === 'raised' ? `[smarthost ${origin.hostname}] ALERT: ${notice.title}` : `[smarthost ${origin.hostname}] RECOVERED: ${notice.title}`;
}

/** The notice's body text (plain), shared by the mail and the chat cards. */
export function noticeLines(notice: AlertNotice): string[] {
  if (notice.kind === 'cleared') {
    return [`Cleared at ${notice.at}${notice.since ? ` (raised at ${notice.since})` : ''}: ${notice.title.toLowerCase()} no longer holds.`];
  }
  return [notice.detail, ...(notice.fix ? [`What to do: ${notice.fix}`] : [])];
}

export function jsonPayload(notice: AlertNotice, origin: AlertOrigin): JsonAlertPayload {
  return {
    source: 'smarthost',
    host: origin.hostname,
    kind: notice.kind,
    condition: notice.condition,
    title: notice.title,
    detail: notice.kind === 'raised' ? notice.detail : noticeLines(notice).join(' '),
    ...(notice.kind === 'raised' && notice.fix ? { fix: notice.fix } : {}),
    at: notice.at,
    ...(notice.since ? { since: notice.since } : {}),
  };
}

/**
 * A Teams incoming webhook (or a Workflows "post to a channel when a webhook request is received")
 * takes a `message` whose attachment is an Adaptive Card.
 */
export function teamsPayload(notice: AlertNotice, origin: AlertOrigin): Record<string, unknown> {
  const facts = [
    { title: 'Relay', value: origin.hostname },
    { title: 'Condition', value: notice.condition },
    { title: notice.kind === 'raised' ? 'Raised' : 'Cleared', value: notice.at },
    ...(notice.since ? [{ title: 'Raised', value: notice.since }] : []),
  ];
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body: [
            { type: 'TextBlock', text: headline(notice, origin), weight: 'Bolder', size: 'Medium', wrap: true, color: notice.kind === 'raised' ? 'Attention' : 'Good' },
            ...noticeLines(notice).map((text) => ({ type: 'TextBlock', text, wrap: true })),
            { type: 'FactSet', facts },
          ],
        },
      },
    ],
  };
}

/** Slack's header block takes at most 150 characters of plain text. */
const SLACK_HEADER_MAX = 150;

/** A Slack incoming webhook: `text` is the notification's fallback, `blocks` what the channel shows. */
export function slackPayload(notice: AlertNotice, origin: AlertOrigin): { text: string; blocks: Record<string, unknown>[] } {
  const title = headline(notice, origin);
  return {
    text: title,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: title.length > SLACK_HEADER_MAX ? `${title.slice(0, SLACK_HEADER_MAX - 1)}…` : title } },
      ...noticeLines(notice).map((text) => ({ type: 'section', text: { type: 'mrkdwn', text } })),
      { type: 'context', elements: [{ type: 'mrkdwn', text: `condition \`${notice.condition}\` · ${notice.at}` }] },
    ],
  };
}

export function webhookPayload(format: WebhookFormat, notice: AlertNotice, origin: AlertOrigin): unknown {
  switch (format) {
    case 'teams':
      return teamsPayload(notice, origin);
    case 'slack':
      return slackPayload(notice, origin);
    case 'json':
      return jsonPayload(notice, origin);
  }
}
