/** Times as an office admin reads them: date and time to the second, UTC, and how long ago. */
export function when(iso: string | number | undefined, now = Date.now()): string {
  if (iso === undefined) return '—';
  const at = typeof iso === 'number' ? iso : Date.parse(iso);
  if (!Number.isFinite(at)) return String(iso);
  const text = new Date(at).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
  return `${text} (${ago(now - at)})`;
}

export function ago(ms: number): string {
  const future = ms < 0;
  const s = Math.round(Math.abs(ms) / 1000);
  const text = s < 60 ? `${s} s` : s < 3600 ? `${Math.round(s / 60)} min` : s < 86_400 ? `${Math.round(s / 360) / 10} h` : `${Math.round(s / 8640) / 10} days`;
  return future ? `in ${text}` : `${text} ago`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
