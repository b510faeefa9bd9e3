import { html, type Html } from './html.ts';
import { ACTION_LABELS, type OperatorAction } from './messagePage.ts';

const CONSEQUENCES: Record<OperatorAction, string> = {
  resend: 'The message goes back to the queue with a fresh set of attempts, for the recipients that did not get it.',
  release: 'The message is tried again now instead of at its next scheduled attempt. Do this after fixing the cause.',
  delete: 'The message is deleted for good and will not be delivered. Its history is kept.',
};

export function confirmPage(id: string, action: OperatorAction, csrf: string, summary: string): Html {
  return html`<h1>${ACTION_LABELS[action]} message ${id}?</h1>
<div class="notice">${CONSEQUENCES[action]}</div>
<p>${summary}</p>
<form method="post" action="/messages/${id}/${action}">
  <input type="hidden" name="csrf" value="${csrf}">
  <input type="hidden" name="confirm" value="yes">
  <div class="actions">
    <button type="submit" class="${action === 'delete' ? 'danger' : ''}" id="confirm">Yes, ${ACTION_LABELS[action].toLowerCase()}</button>
    <a class="button secondary" href="/messages/${id}">Cancel</a>
  </div>
</form>`;
}

export function problemPage(title: string, detail: string): Html {
  return html`<h1>${title}</h1><div class="notice">${detail}</div><p><a href="/">Back to the overview</a></p>`;
}
