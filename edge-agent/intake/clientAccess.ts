import ipaddr from 'ipaddr.js';

export interface ClientRule {
  name: string;
  address: string;
  sendAs?: string;
  auth?: { username: string; password: string };
  acceptAnyAuth: boolean;
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

interface CompiledRule {
  rule: ClientRule;
  range: Range;
}

/** The rule used when no clients are configured: only this machine may relay. */
export const LOOPBACK_RULE: ClientRule = { name: 'loopback', address: '127.0.0.0/8', acceptAnyAuth: false };

/**
 * Decides which configured client a connection is, by source address. The first matching rule
 * wins, so a specific device can be listed before the subnet it sits in.
 */
export class ClientAccess {
  private readonly rules: CompiledRule[];
  private readonly loopbackOnly: boolean;

  constructor(rules: readonly ClientRule[]) {
    this.loopbackOnly = rules.length === 0;
    this.rules = rules.map((rule) => ({ rule, range: parseRange(rule.address) }));
  }

  /** The rule for this remote address, or undefined when it may not relay. */
  match(remoteAddress: string): ClientRule | undefined {
    const address = parseAddress(remoteAddress);
    if (!address) {
      return undefined;
    }
    if (this.loopbackOnly) {
      return address.range() === 'loopback' ? LOOPBACK_RULE : undefined;
    }
    for (const { rule, range } of this.rules) {
      if (address.kind() === range[0].kind() && address.match(range)) {
        return rule;
      }
    }
    return undefined;
  }
}

function parseAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (!ipaddr.isValid(text)) {
    return undefined;
  }
  // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; they must meet their IPv4 rules.
  return ipaddr.process(text);
}

function parseRange(address: string): Range {
  if (address.includes('/')) {
    const [net, bits] = ipaddr.parseCIDR(address);
    if (net.kind() === 'ipv6' && (net as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
      return [(net as ipaddr.IPv6).toIPv4Address(), bits - 96];
    }
    return [net, bits];
  }
  const single = ipaddr.process(address);
  return [single, single.kind() === 'ipv4' ? 32 : 128];
}
