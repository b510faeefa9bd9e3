/**
 * smtp-server with nothing of smarthost, for bench/ceiling.ts: `drain` answers 250 at the end of
 * DATA; `fsync` first writes the body to a new file with one writev, fsyncs, closes and renames
 * it. Prints its port, removes its folder on SIGTERM.
 */
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';

const mode = process.argv[2] === 'fsync' ? 'fsync' : 'drain';
const dir = join(tmpdir(), `smarthost-ceiling-${process.pid}`);
await mkdir(dir, { recursive: true });
let count = 0;
const server = new SMTPServer({
  disableReverseLookup: true,
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  logger: false,
  size: 64 * 1024 * 1024,
  onData(stream, _session, callback) {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      if (mode === 'drain') {
        callback();
        return;
      }
      const name = join(dir, String(count++));
      void (async () => {
        const handle = await open(`${name}.tmp`, 'wx');
        await handle.writev(chunks);
        await handle.sync();
        await handle.close();
        await rename(`${name}.tmp`, name);
      })().then(() => callback(), callback);
    });
  },
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.server.address() as { port: number }).port}\n`);
});
process.on('SIGTERM', () => {
  void rm(dir, { recursive: true, force: true }).then(() => process.exit(0));
});
