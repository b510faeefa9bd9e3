import { html, type Html } from './html.ts';
import { bytes, when } from './format.ts';
import { LIST_LIMIT, STATUS_LABELS, type MessageFilters, type MessageRow, type MessageStatus } from '../consoleModel.ts';

export interface ListView {
  title: string;
  action: '/queue' | '/failed';
  rows: MessageRow[];
  total: number;
  filters: MessageFilters;
  statuses: MessageStatus[];
  notice?: string;
}

export function statusBadge(status: MessageStatus): Html {
  return html`<span class="status ${status}">${STATUS_LABELS[status]}</span>`;
}

export function listPage(view: ListView): Html {
  const f = view.filters;
  const shown = view.rows.slice(0, LIST_LIMIT);
  const filtered = Boolean(f.device || f.sender || f.recipient || (f.status && f.status !== 'all'));
  return html`<h1>${view.title}</h1>
${view.notice ? html`<div class="notice done">${view.notice}</div>` : ''}
<form class="filters" method="get" action="${view.action}">
  <label>Device (name or address)<input name="device" value="${f.device ?? ''}"></label>
  <label>Sender<input name="sender" value="${f.sender ?? ''}"></label>
  <label>Recipient<input name="recipient" value="${f.recipient ?? ''}"></label>
  ${view.statuses.length > 1
    ? html`<label>Status<select name="status"><option value="all">any</option>${view.statuses.map((s) => html`<option value="${s}"${f.status === s ? html` selected` : ''}>${STATUS_LABELS[s]}</option>`)}</select></label>`
    : ''}
  <button type="submit">Filter</button>
  ${filtered ? html`<a class="button secondary" href="${view.action}">Clear</a>` : ''}
</form>
<p class="muted" id="count">${view.rows.length === view.total ? `${view.total} messages` : `${view.rows.length} of ${view.total} messages match`}${view.rows.length > LIST_LIMIT ? `, the first ${LIST_LIMIT} shown` : ''}.</p>
${shown.length === 0
  ? html`<div class="empty">${filtered ? 'No message matches these filters.' : 'Nothing here.'}</div>`
  : html`<table>
<thead><tr><th>Received</th><th>Status</th><th>Device</th><th>Sender</th><th>Recipients</th><th>Size</th><th>Last reply</th></tr></thead>
<tbody>
${shown.map(
  (r) => html`<tr>
  <td><a href="/messages/${r.id}">${when(r.receivedAt)}</a><div class="muted">${r.id}</div></td>
  <td>${statusBadge(r.status)}${r.nextAttemptAt && r.status !== 'failed' ? html`<div class="muted">next try ${when(r.nextAttemptAt)}</div>` : ''}</td>
  <td>${r.device}<div class="muted">${r.ip}</div></td>
  <td>${r.sender}</td>
  <td>${r.recipients.join(', ')}</td>
  <td class="size">${bytes(r.size)}</td>
  <td class="reply">${r.reason ? html`<strong>${r.reason}</strong><br>` : ''}${r.lastReply ?? (r.attempts === 0 ? 'not tried yet' : '')}</td>
</tr>`,
)}
</tbody></table>`}`;
}
