import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { crc32 } from 'node:zlib';
import { LOOPBACK } from './loopbackServer.ts';

/**
 * A loopback front for s3rver that takes what S3 takes and s3rver does not: a body in aws-chunked
 * framing (the SDK's default since 2025: `x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER`,
 * the checksum in a trailer). S3 stores the decoded bytes and refuses a trailer checksum that does
 * not match (400 BadDigest); s3rver alone stored the framing inside the object and answered 200.
 * Everything else is passed on as it came. Bodies are held in memory: test objects only.
 */
export async function startAwsChunkedFront(backendPort: number): Promise<{ server: Server; port: number; readonly decoded: number }> {
  let decodedBodies = 0;
  const server = createServer((incoming, response) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of incoming) chunks.push(chunk as Buffer);
      let body: Buffer = Buffer.concat(chunks);
      const headers: IncomingHttpHeaders = { ...incoming.headers };
      delete headers['transfer-encoding'];
      if (isAwsChunked(headers)) {
        const decoded = decodeAwsChunked(body);
        const expected = decoded.trailers['x-amz-checksum-crc32'];
        if (decoded.error || (expected !== undefined && expected !== crc32Base64(decoded.data))) {
          const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${decoded.error ? 'IncompleteBody' : 'BadDigest'}</Code><Message>${decoded.error ?? 'The CRC32 you specified did not match the calculated checksum.'}</Message></Error>`;
          response.writeHead(400, { 'content-type': 'application/xml' }).end(xml);
          return;
        }
        body = decoded.data;
        decodedBodies += 1;
        headers['content-encoding'] = String(headers['content-encoding'] ?? '').split(',').map((token) => token.trim()).filter((token) => token && token !== 'aws-chunked').join(', ') || undefined;
        if (headers['content-encoding'] === undefined) delete headers['content-encoding'];
        delete headers['x-amz-decoded-content-length'];
        delete headers['x-amz-trailer'];
        headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      }
      if (body.length > 0 || headers['content-length'] !== undefined) headers['content-length'] = String(body.length);
      const upstream = request({ host: LOOPBACK, port: backendPort, method: incoming.method, path: incoming.url, headers }, (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      });
      upstream.on('error', () => {
        if (!response.headersSent) response.writeHead(502);
        response.end();
      });
      upstream.end(body);
    })().catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the S3 front did not listen');
  return {
    server,
    port: address.port,
    get decoded() {
      return decodedBodies;
    },
  };
}

function isAwsChunked(headers: IncomingHttpHeaders): boolean {
  return String(headers['x-amz-content-sha256'] ?? '').startsWith('STREAMING-') || /(^|,)\s*aws-chunked\s*(,|$)/.test(String(headers['content-encoding'] ?? ''));
}

/** `hex-size[;chunk-signature=...]\r\n bytes \r\n` ... `0\r\n` trailers `\r\n`. */
export function decodeAwsChunked(framed: Buffer): { data: Buffer; trailers: Record<string, string>; error?: string } {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = framed.indexOf('\r\n', at);
    if (lineEnd === -1) return { data: Buffer.alloc(0), trailers: {}, error: 'chunk header without its line end' };
    const size = Number.parseInt(framed.toString('latin1', at, lineEnd).split(';')[0] ?? '', 16);
    if (!Number.isInteger(size) || size < 0) return { data: Buffer.alloc(0), trailers: {}, error: 'chunk size is not hexadecimal' };
    at = lineEnd + 2;
    if (size === 0) break;
    if (at + size + 2 > framed.length) return { data: Buffer.alloc(0), trailers: {}, error: 'chunk shorter than its size' };
    parts.push(framed.subarray(at, at + size));
    at += size + 2;
  }
  const trailers: Record<string, string> = {};
  for (const line of framed.toString('latin1', at).split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { data: Buffer.concat(parts), trailers };
}

function crc32Base64(data: Buffer): string {
  const value = Buffer.alloc(4);
  value.writeUInt32BE(crc32(data) >>> 0);
  return value.toString('base64');
}
