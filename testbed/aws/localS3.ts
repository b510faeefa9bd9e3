import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { startAwsChunkedFront } from './awsChunkedFront.ts';
import { TEST_CREDENTIALS, TEST_REGION } from './awsTestEnv.ts';
import { LOOPBACK, closeNow, loopbackUrl } from './loopbackServer.ts';

/**
 * S3 stand-in: s3rver in this process on 127.0.0.1, storing objects in a fresh temporary
 * directory (removed by stop()), with one bucket, behind a front that decodes the aws-chunked
 * bodies the SDK sends under its default checksum settings (./awsChunkedFront.ts; s3rver alone
 * stored the framing inside the object). The client has production's checksum settings (the
 * SDK's defaults) and path-style addressing. Multipart ETags carry no `-N` suffix.
 */

/** The part of s3rver's API used here (the package ships no types). */
interface S3rverInstance {
  run(): Promise<{ port: number }>;
  httpServer?: Server;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
  vhostBuckets: boolean;
}) => S3rverInstance;

const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;

export interface LocalS3Options {
  /** @default 'smarthost-bodies' */
  bucket?: string;
}

export interface LocalS3 {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly bucket: string;
  /** The directory s3rver stores objects in (for tests that look at what was written). */
  readonly directory: string;
  /** forcePathStyle, the SDK's default checksums, explicit endpoint, region and static credentials. */
  readonly client: S3Client;
  /** Bodies that came in aws-chunked framing and were stored decoded. */
  readonly decodedBodies: number;
  /** Stops the server, releases the client's sockets and removes the directory. */
  stop(): Promise<void>;
}

export async function startLocalS3(options: LocalS3Options = {}): Promise<LocalS3> {
  const bucket = options.bucket ?? 'smarthost-bodies';
  const directory = await mkdtemp(join(tmpdir(), 'smarthost-s3rver-'));
  const s3rver = new S3rver({ address: LOOPBACK, port: 0, silent: true, directory, configureBuckets: [{ name: bucket }], vhostBuckets: false });
  let port: number;
  try {
    ({ port } = await s3rver.run());
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  const front = await startAwsChunkedFront(port);
  const endpoint = loopbackUrl(front.port);
  const client = new S3Client({ endpoint, region: TEST_REGION, credentials: TEST_CREDENTIALS, forcePathStyle: true });
  let stopped = false;
  return {
    endpoint,
    bucket,
    directory,
    client,
    get decodedBodies() {
      return front.decoded;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      client.destroy();
      await closeNow(front.server);
      if (s3rver.httpServer) await closeNow(s3rver.httpServer);
      await rm(directory, { recursive: true, force: true });
    },
  };
}
