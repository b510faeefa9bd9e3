import { readFileSync } from 'node:fs';
import { createHash, X509Certificate } from 'node:crypto';

/**
 * The committed test TLS material (see testbed/fixtures/tls/README.md), read once at import.
 * `caPem` is the only thing a client needs to trust both fakes.
 */
const dir = new URL('../fixtures/tls/', import.meta.url);

function read(name: string): string {
  return readFileSync(new URL(name, dir), 'utf8');
}

/** PEM of the test CA that signed `serverCert`. */
export const caPem: string = read('ca.crt');
/** PEM of the test CA's private key (only for tests that must mint their own certificates). */
export const caKey: string = read('ca.key');
/** Server certificate for 127.0.0.1, ::1 and localhost, signed by `caPem`. */
export const serverCert: string = read('server.crt');
export const serverKey: string = read('server.key');
/** Self-signed certificate of the OAuth "certificate" client credential. */
export const clientCert: string = read('client.crt');
/** PKCS#8 private key of `clientCert` (what MSAL's `clientCertificate.privateKey` takes). */
export const clientKey: string = read('client.key');

const clientDer = new X509Certificate(clientCert).raw;
/** SHA-1 thumbprint of `clientCert`, lowercase hex (MSAL `clientCertificate.thumbprint`, header `x5t`). */
export const clientCertThumbprint: string = createHash('sha1').update(clientDer).digest('hex');
/** SHA-256 thumbprint of `clientCert`, lowercase hex (MSAL `clientCertificate.thumbprintSha256`, header `x5t#S256`). */
export const clientCertThumbprintSha256: string = createHash('sha256').update(clientDer).digest('hex');
