/**
 * What the handler prints: Powertools Logger and Metrics write one JSON object per line to
 * stdout, errors and warnings to stderr (in Lambda, CloudWatch Logs takes both; EMF lines become
 * metrics). This takes those lines off process.stdout and process.stderr for assertions and passes
 * everything else through, so the test runner's own output is untouched.
 */

export interface PowertoolsRecord {
  [key: string]: unknown;
}

export interface LambdaOutput {
  /** Every Powertools line so far, parsed. */
  readonly records: readonly PowertoolsRecord[];
  /** EMF metric lines (those with `_aws.CloudWatchMetrics`). */
  metrics(from?: number): PowertoolsRecord[];
  /** Log lines (Powertools Logger: `level`, `message`, the handler's fields). */
  logs(from?: number): PowertoolsRecord[];
  restore(): void;
}

export function captureLambdaOutput(service: string): LambdaOutput {
  const records: PowertoolsRecord[] = [];

  const parse = (text: string): PowertoolsRecord[] | undefined => {
    const lines = text.split('\n').filter((line) => line.trim() !== '');
    if (lines.length === 0) return undefined;
    const parsed: PowertoolsRecord[] = [];
    for (const line of lines) {
      if (!line.startsWith('{')) return undefined;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        return undefined;
      }
      const record = value as PowertoolsRecord;
      if (typeof value !== 'object' || value === null || !('_aws' in record || record.service === service)) return undefined;
      parsed.push(record);
    }
    return parsed;
  };

  const divert = (stream: NodeJS.WriteStream): (() => void) => {
    const original = stream.write;
    stream.write = function write(this: NodeJS.WriteStream, chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
      const text = typeof chunk === 'string' ? chunk : chunk instanceof Uint8Array ? Buffer.from(chunk).toString('utf8') : '';
      const parsed = parse(text);
      if (!parsed) {
        return (original as (...args: unknown[]) => boolean).call(this, chunk, encoding, callback);
      }
      records.push(...parsed);
      const done = typeof encoding === 'function' ? encoding : callback;
      if (typeof done === 'function') process.nextTick(done as () => void);
      return true;
    } as typeof stream.write;
    return () => {
      stream.write = original;
    };
  };
  const restores = [divert(process.stdout), divert(process.stderr)];

  return {
    records,
    metrics: (from = 0) => records.slice(from).filter((record) => '_aws' in record),
    logs: (from = 0) => records.slice(from).filter((record) => !('_aws' in record)),
    restore() {
      for (const restore of restores) restore();
    },
  };
}
