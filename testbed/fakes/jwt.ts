import { constants, sign, verify, type KeyObject } from 'node:crypto';

/**
 * Just enough compact JWS for the fakes: RS256 and PS256 (what MSAL node signs client
 * assertions with: PS256 with a SHA-256 thumbprint, RS256 with a SHA-1 one).
 */
export type JwtAlgorithm = 'RS256' | 'PS256';

export type JsonObject = { [key: string]: unknown };

export interface DecodedJwt {
  header: JsonObject;
  payload: JsonObject;
  /** `base64url(header) + '.' + base64url(payload)`, the bytes the signature covers. */
  signingInput: string;
  signature: Buffer;
}

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function base64urlJson(value: JsonObject): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

function signatureOptions(alg: JwtAlgorithm, key: KeyObject) {
  return alg === 'PS256'
    ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
    : { key, padding: constants.RSA_PKCS1_PADDING };
}

export function signJwt(alg: JwtAlgorithm, header: JsonObject, payload: JsonObject, privateKey: KeyObject): string {
  const signingInput = `${base64urlJson({ ...header, alg, typ: 'JWT' })}.${base64urlJson(payload)}`;
  const signature = sign('sha256', Buffer.from(signingInput, 'ascii'), signatureOptions(alg, privateKey));
  return `${signingInput}.${signature.toString('base64url')}`;
}

/** Splits and parses a compact JWS; null when it is not one. Does not check the signature. */
export function decodeJwt(token: string): DecodedJwt | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  const [h, p, s] = parts as [string, string, string];
  const b64url = /^[A-Za-z0-9_-]*$/;
  if (!b64url.test(h) || !b64url.test(p) || !b64url.test(s) || !h || !p || !s) return null;
  try {
    const header: unknown = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    const payload: unknown = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
    if (!isJsonObject(header) || !isJsonObject(payload)) return null;
    return { header, payload, signingInput: `${h}.${p}`, signature: Buffer.from(s, 'base64url') };
  } catch {
    return null;
  }
}

export function verifyJwtSignature(decoded: DecodedJwt, alg: JwtAlgorithm, publicKey: KeyObject): boolean {
  try {
    return verify('sha256', Buffer.from(decoded.signingInput, 'ascii'), signatureOptions(alg, publicKey), decoded.signature);
  } catch {
    return false;
  }
}

export function isJwtAlgorithm(value: unknown): value is JwtAlgorithm {
  return value === 'RS256' || value === 'PS256';
}
