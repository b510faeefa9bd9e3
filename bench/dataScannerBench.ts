// The DATA scanner patch against smtp-server's own DATA method, the parser alone, the same bytes
// in the same 64 KiB reads, taking turns: MiB/s each and their ratio per trial. The patch stays
// only while this shows it pays (edge-agent/intake/smtp-server-patches/index.ts).
import { dataFeeders, installDataScanner } from '../edge-agent/intake/smtp-server-patches/dataScanner.ts';
import { parseWith } from '../testbed/helpers/smtpStreamDriver.ts';

const READ = 64 * 1024;
const TRIALS = Number(process.env.SCANNER_TRIALS ?? 5);

/** A scan as a device sends it: a short text part and a base64 attachment in 76-character lines. */
function scanMessage(bytes: number): Buffer {
  const line = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n';
  const head = 'From: scanner@contoso.com\r\nTo: alice@contoso.com\r\nSubject: scan\r\nMIME-Version: 1.0\r\n\r\n..a dotted line\r\n';
  const body = line.repeat(Math.ceil(bytes / line.length));
  return Buffer.from(`MAIL FROM:<scanner@contoso.com>\r\nRCPT TO:<alice@contoso.com>\r\nDATA\r\n${head}${body}.\r\nQUIT\r\n`, 'latin1');
}

function reads(bytes: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += READ) chunks.push(bytes.subarray(at, at + READ));
  return chunks;
}

installDataScanner();
const { original, scanner } = dataFeeders();

async function mibPerSecond(feed: typeof original, chunks: Buffer[], totalBytes: number, repeats: number): Promise<number> {
  const started = process.cpuUsage();
  for (let i = 0; i < repeats; i++) {
    const parsed = await parseWith(feed, chunks, false);
    if (parsed.bodies[0]?.ended !== true) throw new Error('the message did not end');
  }
  const used = process.cpuUsage(started);
  return (totalBytes * repeats) / (1024 * 1024) / ((used.user + used.system) / 1e6);
}

for (const [label, size, repeats] of [
  ['100 KiB', 100 * 1024, 400],
  ['5 MiB', 5 * 1024 * 1024, 8],
] as const) {
  const chunks = reads(scanMessage(size));
  const total = chunks.reduce((n, c) => n + c.length, 0);
  // Warm both up so neither row measures unoptimized code.
  await mibPerSecond(original, chunks, total, Math.max(1, repeats / 4));
  await mibPerSecond(scanner, chunks, total, Math.max(1, repeats / 4));
  for (let trial = 1; trial <= TRIALS; trial++) {
    const order = trial % 2 === 0 ? ['scanner', 'original'] : ['original', 'scanner'];
    const result: Record<string, number> = {};
    for (const which of order) result[which] = await mibPerSecond(which === 'scanner' ? scanner : original, chunks, total, repeats);
    const o = result.original!;
    const s = result.scanner!;
    process.stdout.write(`${label} trial ${trial}: smtp-server ${o.toFixed(0)} MiB/s of CPU, scanner ${s.toFixed(0)} MiB/s, ${(s / o).toFixed(2)}x\n`);
  }
}
