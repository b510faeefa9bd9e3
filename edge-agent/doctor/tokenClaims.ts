/** The claims doctor checks; the token itself is never printed. */
export interface TokenClaims {
  aud?: string;
  tid?: string;
  appid?: string;
  /** The service principal (Enterprise Application) object id in the tenant, for app-only tokens. */
  oid?: string;
  roles?: string[];
  exp?: number;
}

/** Reads the payload of a JWT without verifying it: doctor only shows what the platform issued. */
export function decodeClaims(token: string): TokenClaims | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const p = parsed as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    return {
      aud: str(p.aud),
      tid: str(p.tid),
      appid: str(p.appid) ?? str(p.azp),
      oid: str(p.oid),
      roles: Array.isArray(p.roles) ? p.roles.filter((r): r is string => typeof r === 'string') : [],
      exp: typeof p.exp === 'number' ? p.exp : undefined,
    };
  } catch {
    return undefined;
  }
}

/** `https://outlook.office365.com/.default` → `https://outlook.office365.com`. */
export function audienceOfScope(scope: string): string {
  return scope.replace(/\/\.default$/, '');
}
