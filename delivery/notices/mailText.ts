/** Lines of generated mail stay well under SMTP's 998-octet limit. */
export const MAX_LINE = 900;

/** A header value as is when it is printable ASCII, else one RFC 2047 encoded word. */
export function encodeHeader(value: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x20-\x7e]*$/.test(value) ? value : `=?utf-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

/** One line cut into pieces of at most MAX_LINE characters. */
export function wrapLine(line: string): string[] {
  const out: string[] = [];
  for (let rest = line; ; rest = rest.slice(MAX_LINE)) {
    out.push(rest.slice(0, MAX_LINE));
    if (rest.length <= MAX_LINE) return out;
  }
}

/** A text body as 7bit when it is ASCII, else base64: the transfer encoding and the encoded lines. */
export function encodeText(text: string): { encoding: '7bit' | 'base64'; body: string } {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return { encoding: '7bit', body: text };
  return { encoding: 'base64', body: (Buffer.from(text, 'utf8').toString('base64').match(/.{1,76}/g) ?? []).join('\r\n') };
}

/** RFC 5322 date (`Fri, 04 Dec 2026 07:45:25 +0000`). */
export function mailDate(at: Date): string {
  return at.toUTCString().replace('GMT', '+0000');
}

/** A host name fit for a Message-ID's right side. */
export function messageIdHost(hostname: string): string {
  return hostname.replace(/[^A-Za-z0-9.-]/g, '') || 'smarthost';
}
