import { isRecord } from './configProblems.ts';

/** What a secret's value is replaced with wherever a configuration is printed. */
export const SECRET_MASK = '********';


/** Replaces the value at `path` inside `target` (which the caller owns) when it is present. */
export function maskPathInPlace(target: unknown, path: readonly string[]): void {
  let node: unknown = target;
  for (const key of path.slice(0, -1)) {
    if (!isRecord(node)) return;
    node = node[key];
  }
  const last = path[path.length - 1];
  if (last !== undefined && isRecord(node) && node[last] !== undefined) node[last] = SECRET_MASK;
}

