/**
 * Everything wrong with a configuration, found in one pass so the operator fixes it in one go.
 * Each problem reads `key.path[0].sub: message`.
 */
export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[], source?: string) {
    const where = source ? ` in ${source}` : '';
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super(`Invalid configuration${where} (${count}):\n${problems.map((problem) => `  ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}
