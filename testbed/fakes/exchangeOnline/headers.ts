import addressparser from 'nodemailer/lib/addressparser';

/**
 * The addresses in the first From header of a raw message (the header block ends at the first
 * empty line). Folded lines are unfolded. Empty when there is no From header.
 */
export function fromHeaderAddresses(raw: Buffer): string[] {
  const text = raw.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = (end < 0 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  for (const line of head.split(/\r?\n/)) {
    const m = /^from[ \t]*:(.*)$/i.exec(line);
    if (m) {
      return addressparser(m[1] ?? '', { flatten: true })
        .map((a) => a.address)
        .filter((a) => a !== '');
    }
  }
  return [];
}
