/**
 * Which TLS cipher suites the intake offers devices.
 *
 * With `listen.tls.minVersion` TLSv1.2 or TLSv1.3 (the default): TLS 1.3's suites, and for TLS 1.2
 * only forward-secret AEAD suites, ECDHE with AES-GCM or ChaCha20-Poly1305 (Mozilla's
 * "intermediate" list). Node's default list also has static-RSA key exchange (no forward secrecy),
 * CBC with SHA-1 or SHA-2 (Lucky13-style padding oracles), and through `HIGH` CCM8 (short tags)
 * and ARIA; testssl.sh flags each, and any client that speaks TLS 1.2 has the suites below.
 *
 * With minVersion TLSv1 or TLSv1.1, meant for old printers only: OpenSSL's whole default list at
 * security level 0, since those printers often know nothing but CBC suites with SHA-1 or static
 * RSA, and OpenSSL 3 refuses TLS 1.0/1.1 suites at its default level. That one setting is the
 * legacy switch: a separate cipher key would let the two disagree.
 */
const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];
const TLS12_FORWARD_SECRET_AEAD = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
];

export const MODERN_CIPHERS = [...TLS13_SUITES, ...TLS12_FORWARD_SECRET_AEAD].join(':');
export const LEGACY_CIPHERS = 'DEFAULT@SECLEVEL=0';

export type TlsMinVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

/** The `ciphers` option for Node's TLS server (smtp-server passes it on). */
export function cipherList(minVersion: TlsMinVersion): string {
  return minVersion === 'TLSv1' || minVersion === 'TLSv1.1' ? LEGACY_CIPHERS : MODERN_CIPHERS;
}

/** True for an error of a TLS handshake (OpenSSL's, or smtp-server's wrapper of one). */
export function isTlsError(error: Error & { code?: unknown; library?: unknown; meta?: unknown }): boolean {
  if (typeof error.code === 'string' && (error.code.startsWith('ERR_SSL') || error.code === 'TLSError')) return true;
  if (error.library === 'SSL routines') return true;
  return typeof error.meta === 'object' && error.meta !== null && 'tlsProtocol' in error.meta;
}
