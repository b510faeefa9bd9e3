import { main } from './cli.ts';

// Exit explicitly: a stopped agent has nothing left to do, whatever handle a library leaves open.
process.exit(await main(process.argv.slice(2)));
