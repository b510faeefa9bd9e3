import { createServer, request, type IncomingMessage } from 'node:http';
import { closeNow, listenOnLoopback, LOOPBACK, loopbackUrl } from './loopbackServer.ts';

/**
 * A loopback front for any AWS stand-in that plays IAM: requests `deny` names an action for are
 * answered AccessDenied in the service's protocol (JSON services with `__type`, S3 with its XML
 * error), everything else is passed on. The stand-ins themselves allow every call.
 */

export type AwsProtocol = 'json' | 's3';

export interface AccessDeniedFront {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  /** The IAM actions refused so far, in order (e.g. 'sqs:GetQueueAttributes'). */
  readonly denied: readonly string[];
  stop(): Promise<void>;
}

/**
 * `deny` gets the request and answers the IAM action it refuses, or undefined to pass it on.
 * For JSON services the action's operation is the part of `X-Amz-Target` after the dot.
 */
export async function startAccessDeniedFront(
  backend: string,
  protocol: AwsProtocol,
  deny: (incoming: IncomingMessage) => string | undefined,
): Promise<AccessDeniedFront> {
  const target = new URL(backend);
  const denied: string[] = [];
  const server = createServer((incoming, response) => {
    const action = deny(incoming);
    if (action !== undefined) {
      incoming.resume();
      denied.push(action);
      const message = `User: arn:aws:sts::123456789012:assumed-role/smarthost-agent/office is not authorized to perform: ${action} because no identity-based policy allows the ${action} action`;
      if (protocol === 's3') {
        const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>${message}</Message></Error>`;
        response.writeHead(403, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) }).end(xml);
      } else {
        const json = JSON.stringify({ __type: 'com.amazon.coral.service#AccessDeniedException', message });
        response
          .writeHead(400, { 'content-type': 'application/x-amz-json-1.0', 'content-length': Buffer.byteLength(json), 'x-amzn-query-error': 'AccessDenied;Sender' })
          .end(json);
      }
      return;
    }
    const onward = request({ host: LOOPBACK, port: Number(target.port), method: incoming.method, path: incoming.url, headers: incoming.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    onward.on('error', () => {
      if (!response.headersSent) response.writeHead(502);
      response.end();
    });
    incoming.pipe(onward);
  });
  const endpoint = loopbackUrl(await listenOnLoopback(server));
  return {
    endpoint,
    denied,
    stop: () => closeNow(server),
  };
}

/** The operation a JSON-protocol request names (`X-Amz-Target: Service.Operation`). */
export function jsonOperation(incoming: IncomingMessage): string {
  const target = String(incoming.headers['x-amz-target'] ?? '');
  return target.slice(target.indexOf('.') + 1);
}
