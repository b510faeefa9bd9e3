import { once } from 'node:events';
import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One queue message the agent sent, as its envelope names it. */
export interface TappedSend {
  envelopeId: string;
  sha256: string;
}

/** forward: pass it on; drop: cut the connection; confirm-nothing: answer 200 with an empty result, SQS never sees it. */
export type TapDecision = 'forward' | 'drop' | 'confirm-nothing';

/**
 * An HTTP relay on 127.0.0.1 between the agent and the SQS stand-in. It lets a test act at the
 * two instants of a hand-over that matter for a crash: before SQS has the message, and after SQS
 * has taken it but before the agent has heard so. It also records which agent id (and body
 * digest) each accepted SendMessage carried. The agent's config points its queueUrl here; the
 * SDK then sends to this origin.
 */
export class SqsTap {
  /** Queue messages SQS confirmed (SendMessage answered 200, batch entries listed as Successful), in order. */
  readonly accepted: TappedSend[] = [];
  private beforeSqs: ((sends: TappedSend[]) => Promise<TapDecision>) | undefined;
  private afterSqs: ((sends: TappedSend[]) => Promise<void>) | undefined;
  private readonly upstreamAgent = new Agent({ keepAlive: true });

  private constructor(
    private readonly server: Server,
    private readonly target: URL,
  ) {}

  static async start(standInEndpoint: string): Promise<SqsTap> {
    const server = createServer();
    const tap = new SqsTap(server, new URL(standInEndpoint));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => void tap.relay(req, res));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return tap;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The stand-in's queue URL with this relay's origin (local-aws-sqs finds queues by path). */
  queueUrl(standInQueueUrl: string): string {
    const url = new URL(standInQueueUrl);
    return `${this.endpoint}${url.pathname}`;
  }

  /** The next SendMessage(Batch) waits for `hook` before it goes to SQS, then goes, or not, as the hook decides. */
  onNextSendBeforeSqs(hook: ((sends: TappedSend[]) => Promise<TapDecision>) | undefined): void {
    this.beforeSqs = hook;
  }

  /** The next SendMessage(Batch) that SQS accepts waits for `hook` before the agent gets the answer. */
  onNextSendAfterSqs(hook: ((sends: TappedSend[]) => Promise<void>) | undefined): void {
    this.afterSqs = hook;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    this.upstreamAgent.destroy();
    await closed;
  }

  private async relay(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const sends = tappedSends(String(req.headers['x-amz-target'] ?? ''), body);
    const before = sends.size > 0 ? this.beforeSqs : undefined;
    if (before) {
      this.beforeSqs = undefined;
      const decision = await before([...sends.values()]);
      if (decision === 'drop') {
        res.destroy();
        return;
      }
      if (decision === 'confirm-nothing') {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        res.end('{}');
        return;
      }
    }
    const forwarded = request({
      host: this.target.hostname,
      port: this.target.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
      agent: this.upstreamAgent,
    });
    forwarded.on('error', () => res.destroy());
    forwarded.end(body);
    let answer: IncomingMessage;
    try {
      [answer] = (await once(forwarded, 'response')) as [IncomingMessage];
    } catch {
      return;
    }
    const answerChunks: Buffer[] = [];
    for await (const chunk of answer) answerChunks.push(chunk as Buffer);
    const answerBody = Buffer.concat(answerChunks);
    const taken = answer.statusCode === 200 ? acceptedOf(sends, answerBody) : [];
    this.accepted.push(...taken);
    const after = taken.length > 0 ? this.afterSqs : undefined;
    if (after) {
      this.afterSqs = undefined;
      await after(taken);
    }
    if (res.destroyed) return;
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    res.end(answerBody);
  }
}

/** The queue messages of a SendMessage or SendMessageBatch request (JSON protocol), by batch entry Id ('' for a single send). */
function tappedSends(target: string, body: Buffer): Map<string, TappedSend> {
  const sends = new Map<string, TappedSend>();
  if (target !== 'AmazonSQS.SendMessage' && target !== 'AmazonSQS.SendMessageBatch') return sends;
  try {
    const request = JSON.parse(body.toString('utf8')) as { MessageBody?: string; Entries?: { Id?: string; MessageBody?: string }[] };
    const entries = target === 'AmazonSQS.SendMessage' ? [{ Id: '', MessageBody: request.MessageBody }] : (request.Entries ?? []);
    for (const entry of entries) {
      const message = JSON.parse(entry.MessageBody ?? '') as { envelope?: { id?: unknown; sha256?: unknown } };
      const { id, sha256 } = message.envelope ?? {};
      if (typeof id === 'string' && typeof sha256 === 'string') sends.set(entry.Id ?? '', { envelopeId: id, sha256 });
    }
  } catch {
    // Not a smarthost message: nothing to record.
  }
  return sends;
}

/** The sends SQS confirmed: the single send, or the batch entries listed under Successful. */
function acceptedOf(sends: Map<string, TappedSend>, answer: Buffer): TappedSend[] {
  if (sends.has('')) return [...sends.values()];
  try {
    const parsed = JSON.parse(answer.toString('utf8')) as { Successful?: { Id?: string }[] };
    return (parsed.Successful ?? []).flatMap((entry) => {
      const send = sends.get(entry.Id ?? '');
      return send ? [send] : [];
    });
  } catch {
    return [];
  }
}
