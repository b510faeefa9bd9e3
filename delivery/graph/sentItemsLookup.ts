import { findHeaderSection } from '../headerSection.ts';

/**
 * Before a resend on the Graph route: is the message already in the mailbox's Sent Items (an
 * earlier attempt that timed out may have gone out)? Needs Mail.ReadBasic.All, Mail.Read or
 * Mail.ReadWrite (application) on top of Mail.Send, and only works with saveToSentItems.
 * `GET /users/{id}/mailFolders/SentItems/messages?$filter=internetMessageId eq '<...>'`
 */
export type SentItemsAnswer =
  | { found: true }
  | { found: false }
  /** The app may not read the mailbox (401/403): the caller resends, with a warning. */
  | { found: 'forbidden'; status: number; code: string | undefined }
  /** Graph could not answer now (429, 5xx, timeout): the caller must not resend blind. */
  | { found: 'unknown'; detail: string; status?: number; code?: string | undefined };

export async function lookUpSentItem(options: {
  baseUrl: string;
  mailbox: string;
  token: string;
  internetMessageId: string;
  timeoutMs: number;
}): Promise<SentItemsAnswer> {
  // OData string literal: a single quote is doubled.
  const filter = `internetMessageId eq '${options.internetMessageId.replace(/'/g, "''")}'`;
  const url =
    `${options.baseUrl.replace(/\/+$/, '')}/v1.0/users/${encodeURIComponent(options.mailbox)}/mailFolders/SentItems/messages` +
    `?$filter=${encodeURIComponent(filter)}&$select=id,internetMessageId&$top=1`;
  let response: Response;
  try {
    response = await fetch(url, { headers: { authorization: `Bearer ${options.token}` }, signal: AbortSignal.timeout(options.timeoutMs) });
  } catch (error) {
    return { found: 'unknown', detail: `no answer (${(error as Error).name})` };
  }
  const text = await response.text().catch(() => '');
  if (response.status === 401 || response.status === 403) {
    return { found: 'forbidden', status: response.status, code: graphErrorCode(text) };
  }
  if (response.status !== 200) {
    const code = graphErrorCode(text);
    return { found: 'unknown', detail: `HTTP ${response.status} ${code ?? ''}`.trim(), status: response.status, code };
  }
  try {
    const parsed = JSON.parse(text) as { value?: { internetMessageId?: unknown }[] };
    return { found: Array.isArray(parsed.value) && parsed.value.some((m) => m.internetMessageId === options.internetMessageId) };
  } catch {
    return { found: 'unknown', detail: 'an answer that is not JSON' };
  }
}

/**
 * What a forbidden lookup costs and how to allow it: the delivery log's warning and doctor's
 * fix say the same.
 */
export function sentItemsForbidden(mailbox: string, appId: string, status: number, code: string | undefined): { problem: string; fix: string } {
  return {
    problem: `Sent Items of ${mailbox} could not be searched before a resend (HTTP ${status} ${code ?? ''}), so a message an earlier attempt may have sent can arrive twice`.replace(/ +\)/, ')'),
    fix: `give app ${appId} the Microsoft Graph application permission Mail.ReadBasic.All (or Mail.Read) for the mailbox`,
  };
}

/** The Message-ID field of a message (`<...>`), unfolded; undefined when it has none. */
export function internetMessageIdOf(mime: Buffer): string | undefined {
  const { fieldsEnd } = findHeaderSection(mime.subarray(0, Math.min(mime.length, 1024 * 1024)));
  const header = mime.subarray(0, fieldsEnd).toString('latin1').replace(/\r?\n[ \t]+/g, ' ');
  return /^message-id:[ \t]*(<[^>\r\n]+>)/im.exec(header)?.[1];
}

export function graphErrorCode(body: string): string | undefined {
  return graphError(body).code;
}

/** Graph's `{ "error": { "code", "message" } }`. */
export function graphError(body: string): { code: string | undefined; message: string | undefined } {
  try {
    const parsed: unknown = JSON.parse(body);
    const error = typeof parsed === 'object' && parsed !== null ? (parsed as { error?: { code?: unknown; message?: unknown } }).error : undefined;
    return { code: typeof error?.code === 'string' ? error.code : undefined, message: typeof error?.message === 'string' ? error.message : undefined };
  } catch {
    return { code: undefined, message: undefined };
  }
}
