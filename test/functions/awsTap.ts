import { createServer, request } from 'node:http';
import { closeNow, listenOnLoopback, loopbackUrl } from '../../testbed/aws/loopbackServer.ts';

/**
 * A pass-through proxy on 127.0.0.1 in front of an AWS stand-in, for the SDK clients a module
 * builds for itself (the Lambda handler's): it records every call of the JSON protocols (the
 * operation from `X-Amz-Target`, the input from the body) and can hold a call until the test
 * lets it go, to put concurrent work into a known order.
 */

export interface AwsCall {
  /** 'ChangeMessageVisibility', 'UpdateItem'... ('' when the request had no X-Amz-Target). */
  operation: string;
  input: Record<string, unknown>;
}

export interface AwsTapOptions {
  /** Return a promise to hold the call (it is forwarded once the promise settles). */
  hold?: (call: AwsCall) => Promise<unknown> | undefined;
}

export interface AwsTap {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  /** Every call so far, in the order they arrived. */
  readonly calls: readonly AwsCall[];
  /** The inputs of the calls of one operation. */
  inputsOf(operation: string): Record<string, unknown>[];
  stop(): Promise<void>;
}

export async function startAwsTap(upstream: string, options: AwsTapOptions = {}): Promise<AwsTap> {
  const calls: AwsCall[] = [];
  const target = new URL(upstream);
  const server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const amzTarget = incoming.headers['x-amz-target'];
        let input: Record<string, unknown> = {};
        try {
          input = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
        } catch {
          // Not JSON (another protocol): recorded without its input.
        }
        const call: AwsCall = { operation: typeof amzTarget === 'string' ? (amzTarget.split('.').pop() ?? '') : '', input };
        calls.push(call);
        await options.hold?.(call)?.catch(() => undefined);
        const forwarded = request(
          { host: target.hostname, port: target.port, method: incoming.method, path: incoming.url, headers: incoming.headers, agent: false },
          (response) => {
            outgoing.writeHead(response.statusCode ?? 502, response.headers);
            response.pipe(outgoing);
          },
        );
        forwarded.on('error', (error) => {
          if (!outgoing.headersSent) outgoing.writeHead(502);
          outgoing.end(String(error));
        });
        forwarded.end(body);
      })();
    });
  });
  const endpoint = loopbackUrl(await listenOnLoopback(server));
  return {
    endpoint,
    calls,
    inputsOf: (operation) => calls.filter((call) => call.operation === operation).map((call) => call.input),
    stop: () => closeNow(server),
  };
}
