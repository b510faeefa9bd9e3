import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeNow, listenOnLoopback, loopbackUrl } from './loopbackServer.ts';

/**
 * CloudWatch stand-in on 127.0.0.1 for PutMetricData only, in the protocol the SDK v3 client
 * speaks (AWS JSON 1.0, `X-Amz-Target: GraniteServiceVersion20100801.PutMetricData`, query
 * compatible). It records what was published so a test can see the agent's heartbeat arrive.
 */

const TARGET_PREFIX = 'GraniteServiceVersion20100801.';

export interface PublishedMetric {
  namespace: string;
  name: string;
  value: number | undefined;
}

export interface LocalCloudWatch {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  /** Every datum published so far, in order. */
  readonly published: readonly PublishedMetric[];
  stop(): Promise<void>;
}

export async function startLocalCloudWatch(): Promise<LocalCloudWatch> {
  const published: PublishedMetric[] = [];

  const respond = (response: ServerResponse, status: number, body: unknown, queryError?: string): void => {
    const text = JSON.stringify(body);
    response.writeHead(status, {
      'content-type': 'application/x-amz-json-1.0',
      'content-length': Buffer.byteLength(text),
      'x-amzn-requestid': randomUUID(),
      ...(queryError ? { 'x-amzn-query-error': queryError } : {}),
    });
    response.end(text);
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const target = String(request.headers['x-amz-target'] ?? '');
    if (request.method !== 'POST' || target !== `${TARGET_PREFIX}PutMetricData`) {
      respond(response, 400, { __type: 'com.amazonaws.cloudwatch#InvalidAction', message: `this stand-in does not implement ${target}` }, 'InvalidAction;Sender');
      return;
    }
    let input: { Namespace?: unknown; MetricData?: unknown };
    try {
      input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as typeof input;
    } catch {
      respond(response, 400, { __type: 'com.amazonaws.cloudwatch#InvalidParameterValue', message: 'request body is not JSON' }, 'InvalidParameterValue;Sender');
      return;
    }
    if (typeof input.Namespace !== 'string' || !Array.isArray(input.MetricData) || input.MetricData.length === 0) {
      respond(response, 400, { __type: 'com.amazonaws.cloudwatch#MissingRequiredParameter', message: 'Namespace and MetricData are required' }, 'MissingParameter;Sender');
      return;
    }
    for (const datum of input.MetricData as { MetricName?: unknown; Value?: unknown }[]) {
      published.push({ namespace: input.Namespace, name: String(datum.MetricName), value: typeof datum.Value === 'number' ? datum.Value : undefined });
    }
    respond(response, 200, {});
  };

  const server = createServer((request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
  const endpoint = loopbackUrl(await listenOnLoopback(server));
  return {
    endpoint,
    published,
    stop: () => closeNow(server),
  };
}
