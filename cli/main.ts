// Runs before the rest of the agent is even loaded (hence the dynamic import): loading it is
// enough to grow V8's young generation for good.
import '../edge-agent/memoryFlags.ts';

const { main } = await import('./cli.ts');
// Exit explicitly: a stopped agent has nothing left to do, whatever handle a library leaves open.
process.exit(await main(process.argv.slice(2)));
