// Entry of the single executable (scripts/release/): Node's SEA runs one CommonJS script, which
// cannot await at top level as main.ts does. memoryFlags.ts is still evaluated before the rest of
// the agent: the bundle keeps the import order.
import '../edge-agent/memoryFlags.ts';
import { main } from './cli.ts';

void main(process.argv.slice(2)).then(
  // Exit explicitly: a stopped agent has nothing left to do, whatever handle a library leaves open.
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
