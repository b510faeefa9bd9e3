/**
 * Cloud path benchmark: the numbers the serverless issue's closing note asks for.
 *
 *   (a) the Lambda bundle: functions/lambda/handler.ts built with esbuild the way the CDK
 *       construct (infra/constructs/DeliveryFunction.ts) has NodejsFunction build it, size in bytes;
 *   (b) the time to import that bundle in a fresh `node` process (the cold start's module part),
 *       median of 5, with and without --enable-source-maps (the function's NODE_OPTIONS);
 *   (c) messages/s from the agent to the SQS stand-in: the agent runs in this process with
 *       `queue.kind: sqs`, nodemailer sends over 10 connections, and the clock runs from the first
 *       send to the last 250 (accepted) and to the forwarder being idle (handed to SQS).
 *
 *   node --import tsx bench/cloudBench.ts [--quick]
 *
 * Not part of `npm test`: the numbers depend on the machine. Everything runs on 127.0.0.1.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { build, type Metafile } from 'esbuild';
import { createTransport } from 'nodemailer';
import { FUNCTION_ENV } from '../contract/cloudResources.ts';
import { startLocalS3 } from '../testbed/aws/localS3.ts';
import { startLocalSqs } from '../testbed/aws/localSqs.ts';
import { startTestAgent } from '../testbed/helpers/agentHarness.ts';

const quick = process.argv.includes('--quick');
const REPO = fileURLToPath(new URL('../', import.meta.url));
const ENTRY = join(REPO, 'functions/lambda/handler.ts');
const KiB = 1024;

/**
 * The construct's bundling options, as NodejsFunction turns them into esbuild arguments
 * (aws-cdk-lib/aws-lambda-nodejs/lib/bundling.js): --bundle --platform=node --format=esm
 * --target=node<runtime> --minify --sourcemap --sources-content=false --main-fields=module,main
 * --banner:js=<ESM_REQUIRE_BANNER> --log-level=warning, and --external:@aws-sdk/* by default
 * (bundleAwsSdk: false, the SDK of the Lambda runtime); bundleAwsSdk: true bundles it too.
 * The banner is copied from DeliveryFunction.ts (importing the construct would load the CDK).
 */
const ESM_REQUIRE_BANNER =
  "import { createRequire as __smarthostCreateRequire } from 'node:module'; const require = __smarthostCreateRequire(import.meta.url);";
/** Runtime.NODEJS_24_X in the construct gives --target=node24; node22 is the brief's figure. */
const TARGETS = ['node24', 'node22'] as const;

/** 'runtime': @aws-sdk/* left to the Lambda runtime (the construct's default); 'bundled': bundleAwsSdk: true. */
type AwsSdk = 'runtime' | 'bundled';

interface BundleResult {
  target: string;
  sdk: AwsSdk;
  file: string;
  bytes: number;
  mapBytes: number;
  metafile: Metafile;
}

async function bundle(dir: string, target: string, sdk: AwsSdk): Promise<BundleResult> {
  const file = join(dir, `${target}-${sdk}-sdk`, 'index.mjs');
  const result = await build({
    entryPoints: [ENTRY],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target,
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    mainFields: ['module', 'main'],
    banner: { js: ESM_REQUIRE_BANNER },
    outfile: file,
    logLevel: 'warning',
    metafile: true,
    absWorkingDir: REPO,
    external: sdk === 'runtime' ? ['@aws-sdk/*'] : [],
  });
  return { target, sdk, file, bytes: (await stat(file)).size, mapBytes: (await stat(`${file}.map`)).size, metafile: result.metafile };
}

/** Output bytes by npm package (or 'smarthost' for this repository's code). */
function bytesByPackage(metafile: Metafile): [string, number][] {
  const totals = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
      const name = match?.[1] ?? 'smarthost';
      totals.set(name, (totals.get(name) ?? 0) + bytesInOutput);
    }
  }
  return [...totals].sort((a, b) => b[1] - a[1]);
}

/** Groups packages by scope family (@aws-sdk/*, @smithy/*, ...) for a shorter list. */
function byFamily(packages: [string, number][]): [string, number][] {
  const totals = new Map<string, number>();
  for (const [name, bytes] of packages) {
    const family = name.startsWith('@') ? `${name.split('/')[0]}/*` : name;
    totals.set(family, (totals.get(family) ?? 0) + bytes);
  }
  return [...totals].sort((a, b) => b[1] - a[1]);
}

/** Dummy loopback values: the module initializes but nothing it builds talks to anything. */
function functionEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('AWS_') && !name.startsWith('SMARTHOST_') && !name.startsWith('POWERTOOLS_') && name !== 'NODE_OPTIONS') env[name] = value;
  }
  return {
    ...env,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'BENCH',
    AWS_SECRET_ACCESS_KEY: 'BENCH',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
    [FUNCTION_ENV.queueUrl]: 'http://127.0.0.1:9/123456789012/smarthost-mail',
    [FUNCTION_ENV.secretArn]: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:smarthost-upstream-AbCdEf',
    [FUNCTION_ENV.deadLetterQueueUrl]: 'http://127.0.0.1:9/123456789012/smarthost-mail-dlq',
    [FUNCTION_ENV.ledgerTable]: 'smarthost-ledger',
    [FUNCTION_ENV.secretTtlSeconds]: '300',
    [FUNCTION_ENV.instances]: '2',
    POWERTOOLS_SERVICE_NAME: 'smarthost-delivery',
    POWERTOOLS_METRICS_NAMESPACE: 'Smarthost',
  };
}

interface ImportRun {
  /** `await import()` of the bundle, measured inside the child. */
  importMs: number;
  /** From the child's process start (performance.timeOrigin) to the import's end. */
  readyMs: number;
  /** From spawn to exit, measured here. */
  processMs: number;
}

function importOnce(file: string, nodeArgs: string[]): Promise<ImportRun> {
  const script = [
    `const started = performance.now();`,
    `const module = await import(${JSON.stringify(pathToFileURL(file).href)});`,
    `const ended = performance.now();`,
    `if (typeof module.handler !== 'function') throw new Error('no handler export');`,
    `process.stdout.write(JSON.stringify({ importMs: ended - started, readyMs: ended }) + '\\n');`,
  ].join('\n');
  const spawned = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], { env: functionEnv(), timeout: 60_000 }, (error, stdout, stderr) => {
      const processMs = Number(process.hrtime.bigint() - spawned) / 1e6;
      if (error) {
        reject(new Error(`importing the bundle failed: ${error.message}\n${stderr}`));
        return;
      }
      const line = stdout.trim().split('\n').pop() ?? '';
      const { importMs, readyMs } = JSON.parse(line) as { importMs: number; readyMs: number };
      resolve({ importMs, readyMs, processMs });
    });
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

async function importTimes(file: string, nodeArgs: string[], runs = 5): Promise<{ importMs: number; readyMs: number; processMs: number; all: number[] }> {
  await importOnce(file, nodeArgs); // warms the file cache; not counted
  const results: ImportRun[] = [];
  for (let i = 0; i < runs; i++) results.push(await importOnce(file, nodeArgs));
  return {
    importMs: median(results.map((r) => r.importMs)),
    readyMs: median(results.map((r) => r.readyMs)),
    processMs: median(results.map((r) => r.processMs)),
    all: results.map((r) => r.importMs),
  };
}

// ---------------------------------------------------------------------------------------------
// (c) agent → SQS stand-in

interface ForwardScenario {
  name: string;
  size: number;
  messages: number;
  connections: number;
}

interface ForwardResult {
  scenario: ForwardScenario;
  acceptedSeconds: number;
  handedSeconds: number;
  forwarded: number;
  onQueue: number;
  peakBacklog: number;
  queueBytes: number;
}

/** A message of exactly `size` bytes: headers, then base64 lines like a scanned attachment's. */
function messageOf(size: number, n: number): Buffer {
  const header = `From: scanner@contoso.com\r\nTo: you@contoso.com\r\nSubject: bench ${n}\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n`;
  const lines: string[] = [];
  let length = header.length;
  for (let i = 0; length < size; i++) {
    const line = `${createHash('sha512').update(`${n}/${i}`).digest('base64').slice(0, 76)}\r\n`;
    lines.push(line);
    length += line.length;
  }
  const whole = Buffer.from(header + lines.join(''));
  return Buffer.concat([whole.subarray(0, size - 2), Buffer.from('\r\n')]);
}

async function forwardToSqs(scenarios: ForwardScenario[]): Promise<ForwardResult[]> {
  const [sqs, s3] = await Promise.all([startLocalSqs({ maxAttempts: 3 }), startLocalS3()]);
  const noCloudWatch = { send: async () => ({}) } as unknown as CloudWatchClient;
  const agent = await startTestAgent(
    { queue: { kind: 'sqs', sqs: { queueUrl: sqs.queueUrl, bucket: s3.bucket, region: 'us-east-1' } }, log: { level: 'info' }, spool: { maxBytes: '1GB' } },
    { aws: { sqs: sqs.client, s3: s3.client, cloudWatch: noCloudWatch } },
  );
  const results: ForwardResult[] = [];
  try {
    let forwardedTotal = 0;
    let peakBacklog = 0;
    let onQueueBefore = 0;
    agent.forwarder.on('forwarded', () => {
      forwardedTotal += 1;
    });
    for (const scenario of scenarios) {
      const messages = Array.from({ length: scenario.messages }, (_, i) => messageOf(scenario.size, i));
      const transport = createTransport({ host: '127.0.0.1', port: agent.address.port, pool: true, maxConnections: scenario.connections, maxMessages: Infinity, ignoreTLS: true });
      const forwardedBefore = forwardedTotal;
      peakBacklog = 0;
      const sampler = setInterval(() => (peakBacklog = Math.max(peakBacklog, agent.forwarder.depth)), 5);
      let next = 0;
      const started = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: scenario.connections }, async () => {
          while (next < messages.length) {
            const raw = messages[next++] as Buffer;
            await transport.sendMail({ envelope: { from: 'scanner@contoso.com', to: ['you@contoso.com'] }, raw });
          }
        }),
      );
      const accepted = process.hrtime.bigint();
      await agent.forwarder.whenIdle();
      const handed = process.hrtime.bigint();
      clearInterval(sampler);
      transport.close();
      const { Attributes } = await sqs.client.send(new GetQueueAttributesCommand({ QueueUrl: sqs.queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
      const onQueue = Number(Attributes?.ApproximateNumberOfMessages);
      results.push({
        scenario,
        acceptedSeconds: Number(accepted - started) / 1e9,
        handedSeconds: Number(handed - started) / 1e9,
        forwarded: forwardedTotal - forwardedBefore,
        onQueue: onQueue - onQueueBefore,
        peakBacklog,
        queueBytes: messages.reduce((sum, m) => sum + m.length, 0),
      });
      onQueueBefore = onQueue;
    }
  } finally {
    await agent.dispose();
    await Promise.all([sqs.stop(), s3.stop()]);
  }
  return results;
}

// ---------------------------------------------------------------------------------------------

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(head), line(head.map((_, i) => '-'.repeat(widths[i] as number))), ...rows.map(line)].join('\n');
}

const kib = (bytes: number) => `${(bytes / KiB).toFixed(1)} KiB`;
const ms = (value: number) => `${value.toFixed(1)} ms`;

async function main(): Promise<void> {
  // Under node_modules, so that a bundle leaving @aws-sdk/* to the runtime imports it from this
  // repository's node_modules (ESM ignores NODE_PATH, which is how Lambda offers its SDK to CommonJS).
  await mkdir(join(REPO, 'node_modules', '.cache'), { recursive: true });
  const dir = await mkdtemp(join(REPO, 'node_modules', '.cache', 'smarthost-cloud-bench-'));
  try {
    console.log(`smarthost cloud bench — node ${process.version}, ${quick ? 'quick' : 'full'} run\n`);

    // (a)
    const bundles: BundleResult[] = [];
    for (const target of TARGETS) bundles.push(await bundle(dir, target, 'runtime'));
    bundles.push(await bundle(dir, 'node24', 'bundled'));
    const cdkAsset = await cdkAssetSize();
    console.log('(a) Lambda bundle: esbuild --bundle --minify --platform=node --format=esm (options of DeliveryFunction.ts)');
    console.log(
      table(
        ['bundle', 'bytes', 'size', 'source map'],
        [
          ...bundles.map((b) => [
            `target ${b.target}, ${b.sdk === 'runtime' ? "the runtime's AWS SDK" : 'AWS SDK bundled'}${b.target === 'node24' ? (b.sdk === 'runtime' ? ' (as the CDK builds it)' : ' (bundleAwsSdk: true)') : ''}`,
            String(b.bytes),
            kib(b.bytes),
            kib(b.mapBytes),
          ]),
          ...(cdkAsset ? [[`cdk.out asset (last synth)`, String(cdkAsset), kib(cdkAsset), '']] : []),
        ],
      ),
    );
    const node24 = bundles.filter((b) => b.target === 'node24');
    for (const b of node24) {
      const families = byFamily(bytesByPackage(b.metafile)).slice(0, 8);
      console.log(`\n    largest parts of the node24 bundle, ${b.sdk} SDK: ${families.map(([name, bytes]) => `${name} ${kib(bytes)}`).join(', ')}`);
    }
    console.log('');

    // (b)
    const runs = 5;
    const rows: string[][] = [];
    for (const b of node24) {
      const sdk = b.sdk === 'runtime' ? "runtime's SDK (from node_modules here)" : 'SDK bundled';
      const plain = await importTimes(b.file, [], runs);
      const withMaps = await importTimes(b.file, ['--enable-source-maps'], runs);
      rows.push([sdk, '(none)', ms(plain.importMs), ms(plain.readyMs), ms(plain.processMs), plain.all.map((v) => v.toFixed(0)).join(' ')]);
      rows.push([sdk, '--enable-source-maps (Lambda NODE_OPTIONS)', ms(withMaps.importMs), ms(withMaps.readyMs), ms(withMaps.processMs), withMaps.all.map((v) => v.toFixed(0)).join(' ')]);
    }
    console.log(`(b) importing the handler bundle in a fresh node ${process.version} process, median of ${runs} (FUNCTION_ENV set to loopback dummies)`);
    console.log(table(['bundle', 'node options', 'import()', 'process start → imported', 'spawn → exit', 'import() runs'], rows));
    console.log('');

    // (c)
    const scenarios: ForwardScenario[] = [
      { name: '1 KiB', size: KiB, messages: quick ? 100 : 500, connections: 10 },
      { name: '100 KiB', size: 100 * KiB, messages: quick ? 20 : 100, connections: 10 },
    ];
    const forwarded = await forwardToSqs(scenarios);
    console.log('(c) agent (in process, queue.kind sqs, spool fsync per message) → SQS stand-in (local-aws-sqs), nodemailer, 10 connections');
    console.log(
      table(
        ['messages', 'n', 'accepted msgs/s', 'handed to SQS msgs/s', 'MiB/s to SQS', 'last 250', 'idle', 'peak spool backlog', 'forwarded', 'new on queue'],
        forwarded.map((r) => [
          r.scenario.name,
          String(r.scenario.messages),
          (r.scenario.messages / r.acceptedSeconds).toFixed(0),
          (r.scenario.messages / r.handedSeconds).toFixed(0),
          (r.queueBytes / (1024 * 1024) / r.handedSeconds).toFixed(1),
          `${r.acceptedSeconds.toFixed(2)} s`,
          `${r.handedSeconds.toFixed(2)} s`,
          String(r.peakBacklog),
          String(r.forwarded),
          String(r.onQueue),
        ]),
      ),
    );
    const short = forwarded.filter((r) => r.forwarded !== r.scenario.messages || r.onQueue !== r.scenario.messages);
    if (short.length > 0) {
      process.exitCode = 1;
      console.log(`\nNOT ALL FORWARDED: ${short.map((r) => `${r.scenario.name}: ${r.forwarded} forwarded, ${r.onQueue} on the queue, of ${r.scenario.messages}`).join('; ')}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Size of the handler bundle of the last `npm run synth`, if there is one, for comparison. */
async function cdkAssetSize(): Promise<number | undefined> {
  try {
    const assets = JSON.parse(await readFile(join(REPO, 'cdk.out', 'Smarthost.assets.json'), 'utf8')) as { files?: Record<string, { source?: { path?: string } }> };
    for (const asset of Object.values(assets.files ?? {})) {
      const path = asset.source?.path;
      if (path?.startsWith('asset.')) {
        return (await stat(join(REPO, 'cdk.out', path, 'index.mjs'))).size;
      }
    }
  } catch {
    // No synth yet.
  }
  return undefined;
}

await main();
