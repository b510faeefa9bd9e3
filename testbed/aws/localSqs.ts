import { createServer, type Server } from 'node:http';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { createRequestHandler } from './patchedLocalSqs.ts';
import { TEST_CREDENTIALS, TEST_REGION } from './awsTestEnv.ts';
import { LOOPBACK, closeNow, listenOnLoopback, loopbackUrl } from './loopbackServer.ts';

/**
 * SQS stand-in: local-aws-sqs in this process on 127.0.0.1, with a queue and its dead-letter
 * queue. Three of its traps are patched to behave as SQS (./patchedLocalSqs.ts: receive count,
 * long polls, MessageSystemAttributeNames); one remains: its size check counts characters, not
 * UTF-8 bytes. Redrive happens when the visibility timeout of the maxReceiveCount-th receive runs out.
 */

export interface LocalSqsOptions {
  queueName?: string;
  dlqName?: string;
  /** Receives before the message goes to the DLQ. @default 3 */
  maxReceiveCount?: number;
  /** Seconds. @default 30 */
  visibilityTimeout?: number;
  /** Bytes (local-aws-sqs counts characters). @default 1048576, the stand-in's default */
  maximumMessageSize?: number;
  /** SDK attempts per call, so a test of "SQS down" does not wait through many retries. @default 2 */
  maxAttempts?: number;
  /**
   * Actions (e.g. 'StartMessageMoveTask') answered as an SQS-compatible service without them
   * answers: 404 with an HTML page, no SQS reply. @default none
   */
  unavailableActions?: readonly string[];
}

export interface LocalSqs {
  /** http://127.0.0.1:PORT; the same across stop() and restart(). */
  readonly endpoint: string;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly dlqUrl: string;
  readonly dlqArn: string;
  /** Explicit endpoint, region and static credentials: never asks the default chain. */
  readonly client: SQSClient;
  readonly running: boolean;
  /**
   * Stops listening and drops open connections (pending long polls fail). Queues and messages
   * stay in this process's memory, timers keep running: an outage, not a reset. Also the final
   * teardown: the client's sockets are released.
   */
  stop(): Promise<void>;
  /** Listens again on the same port, with the same queues and messages. */
  restart(): Promise<void>;
  /**
   * An outage as clients see it: new connections are refused, requests already in progress (long
   * polls) end normally. Unlike stop(), it never cuts a long poll: local-aws-sqs keeps a cut
   * long poll's waiter, which then swallows every later message of that queue. restart() ends it.
   */
  goDown(): Promise<void>;
}

export async function startLocalSqs(options: LocalSqsOptions = {}): Promise<LocalSqs> {
  const queueName = options.queueName ?? 'smarthost-mail';
  const dlqName = options.dlqName ?? `${queueName}-dlq`;
  // One handler for the stand-in's lifetime: it holds the queues, so they survive a restart.
  const { service, requestHandler } = createRequestHandler({
    port: 0,
    hostname: LOOPBACK,
    region: TEST_REGION,
    emulateQueueCreationLifecycle: false,
  });
  const unavailable = new Set((options.unavailableActions ?? []).map((action) => `AmazonSQS.${action}`));
  const handle = (request: Parameters<typeof requestHandler>[0], response: Parameters<typeof requestHandler>[1]): void => {
    if (unavailable.has(String(request.headers['x-amz-target']))) {
      request.resume();
      response.writeHead(404, { 'content-type': 'text/html' }).end('<html><body><h1>404 Not Found</h1></body></html>');
      return;
    }
    requestHandler(request, response).catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500);
      response.end(String(error));
    });
  };

  let server: Server = createServer(handle);
  const port = await listenOnLoopback(server);
  // Queue URLs are built from these; set before any queue is created.
  service.PORT = port;
  const endpoint = loopbackUrl(port);
  const client = new SQSClient({ endpoint, region: TEST_REGION, credentials: TEST_CREDENTIALS, maxAttempts: options.maxAttempts ?? 2 });

  try {
    const { QueueUrl: dlqUrl } = await client.send(new CreateQueueCommand({ QueueName: dlqName }));
    if (!dlqUrl) throw new Error('local-aws-sqs returned no URL for the DLQ');
    const dlqArn = await queueArnOf(client, dlqUrl);
    const { QueueUrl: queueUrl } = await client.send(
      new CreateQueueCommand({
        QueueName: queueName,
        Attributes: {
          VisibilityTimeout: String(options.visibilityTimeout ?? 30),
          MaximumMessageSize: String(options.maximumMessageSize ?? 1024 * 1024),
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: options.maxReceiveCount ?? 3 }),
        },
      }),
    );
    if (!queueUrl) throw new Error('local-aws-sqs returned no URL for the queue');
    const queueArn = await queueArnOf(client, queueUrl);

    return {
      endpoint,
      queueUrl,
      queueArn,
      dlqUrl,
      dlqArn,
      client,
      get running() {
        return server.listening;
      },
      async stop() {
        await closeNow(server);
        client.destroy();
      },
      async goDown() {
        await new Promise<void>((resolve) => {
          server.close(() => {
            clearInterval(sweeper);
            resolve();
          });
          // A connection whose long poll ends later turns idle then: keep closing idle ones.
          const sweeper = setInterval(() => server.closeIdleConnections(), 20);
          server.closeIdleConnections();
        });
      },
      async restart() {
        if (server.listening) return;
        server = createServer(handle);
        await listenOnLoopback(server, port);
      },
    };
  } catch (error) {
    await closeNow(server);
    client.destroy();
    throw error;
  }
}

async function queueArnOf(client: SQSClient, queueUrl: string): Promise<string> {
  const { Attributes } = await client.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
  const arn = Attributes?.QueueArn;
  if (!arn) throw new Error(`local-aws-sqs returned no ARN for ${queueUrl}`);
  return arn;
}
