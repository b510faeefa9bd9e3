/** A request's path, split and checked, and its query. */
export interface RequestTarget {
  segments: string[];
  query: URLSearchParams;
}

/** Longest request target accepted (Node's own header limit is the outer bound). */
export const MAX_TARGET_LENGTH = 2048;

/**
 * Splits the request target into path segments, refusing anything that could mean another path
 * than it looks like: dot segments (plain or percent-encoded), encoded slashes and backslashes,
 * NUL and control characters, and malformed escapes. The console serves no files, but the rule is
 * kept strict so a later route cannot be tricked. Undefined means 400.
 */
export function parseTarget(raw: string | undefined): RequestTarget | undefined {
  if (!raw || raw.length > MAX_TARGET_LENGTH || !raw.startsWith('/')) return undefined;
  const q = raw.indexOf('?');
  const path = q === -1 ? raw : raw.slice(0, q);
  if (/[\\\x00-\x1f\x7f]/.test(path) || /%(2f|5c|00)/i.test(path) || path.includes('//')) return undefined;
  const segments: string[] = [];
  for (const piece of path.split('/').slice(1)) {
    let segment: string;
    try {
      segment = decodeURIComponent(piece);
    } catch {
      return undefined;
    }
    if (segment === '.' || segment === '..') return undefined;
    if (segment !== '') segments.push(segment);
  }
  let query: URLSearchParams;
  try {
    query = new URLSearchParams(q === -1 ? '' : raw.slice(q + 1));
  } catch {
    return undefined;
  }
  return { segments, query };
}
