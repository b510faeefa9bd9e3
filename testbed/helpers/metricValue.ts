/**
 * One sample of a Prometheus text exposition: `name` with its labels as written
 * (`smarthost_delivery_attempts_total{outcome="delivered"}`); undefined when there is no such line.
 */
export function metricValue(text: string, name: string): number | undefined {
  const escaped = name.replace(/[{}"]/g, (c) => `\\${c}`);
  const match = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}
