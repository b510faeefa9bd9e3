/**
 * Who exists and who may send as whom: the part of Exchange Online's directory the fake needs.
 * Addresses compare case-insensitively.
 */
export interface DirectoryOptions {
  /** Accepted domains of the tenant; recipients there must exist. */
  internalDomains?: string[];
  /** Known addresses (mailboxes, shared mailboxes, groups). */
  mailboxes?: string[];
  /** Mailbox (the authenticated user) → addresses it may send as besides itself. */
  sendAs?: Record<string, string[]>;
  /** Basic-auth users, who are mailboxes too. */
  basicUsers?: Record<string, string>;
}

export function normalizeAddress(address: string): string {
  return address.trim().toLowerCase();
}

function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1);
}

export class Directory {
  private readonly internalDomains: Set<string>;
  private readonly known: Set<string>;
  private readonly sendAs: Map<string, Set<string>>;

  constructor(opts: DirectoryOptions) {
    this.internalDomains = new Set((opts.internalDomains ?? []).map(normalizeAddress));
    this.sendAs = new Map(
      Object.entries(opts.sendAs ?? {}).map(([mailbox, addresses]) => [normalizeAddress(mailbox), new Set(addresses.map(normalizeAddress))]),
    );
    // Every address named anywhere in the options exists: listed mailboxes, basic-auth users,
    // mailboxes with send-as grants and the addresses they may send as.
    this.known = new Set([
      ...(opts.mailboxes ?? []).map(normalizeAddress),
      ...Object.keys(opts.basicUsers ?? {}).map(normalizeAddress),
      ...this.sendAs.keys(),
      ...[...this.sendAs.values()].flatMap((set) => [...set]),
    ]);
  }

  isInternal(address: string): boolean {
    return this.internalDomains.has(domainOf(normalizeAddress(address)));
  }

  /** False only for an internal-domain address nobody listed (EXO's 5.1.10). */
  recipientExists(address: string): boolean {
    const a = normalizeAddress(address);
    return !this.isInternal(a) || this.known.has(a);
  }

  /** The mailbox itself, or an address it was granted SendAs on. The null sender is always allowed. */
  maySendAs(mailbox: string, address: string): boolean {
    const a = normalizeAddress(address);
    const m = normalizeAddress(mailbox);
    return a === '' || a === m || (this.sendAs.get(m)?.has(a) ?? false);
  }
}
