import { createHash, generateKeyPairSync, randomUUID, X509Certificate, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { decodeJwt, isJwtAlgorithm, signJwt, verifyJwtSignature, type JsonObject } from './jwt.ts';
import { serverCert, serverKey } from './tlsFixtures.ts';

/**
 * A stand-in for the Microsoft identity platform's v2.0 token endpoint, client credentials grant
 * only, on https://127.0.0.1:<port> with the test server certificate (trust `caPem`).
 *
 * Routes: POST /{tenant}/oauth2/v2.0/token, GET /{tenant}/v2.0/.well-known/openid-configuration,
 * GET /{tenant}/discovery/v2.0/keys. MSAL node 7 configured with `knownAuthorities` and
 * `authorityMetadata` only ever POSTs to the token endpoint (see `httpRequests`).
 */

export const EXCHANGE_ONLINE_RESOURCE = 'https://outlook.office365.com';
export const EXCHANGE_ONLINE_SCOPE = `${EXCHANGE_ONLINE_RESOURCE}/.default`;
export const SEND_AS_APP_ROLE = 'SMTP.SendAsApp';
export const GRAPH_TOKEN_RESOURCE = 'https://graph.microsoft.com';
export const GRAPH_TOKEN_SCOPE = `${GRAPH_TOKEN_RESOURCE}/.default`;
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface FakeClientRegistration {
  /** Client secret value the app accepts. */
  secret?: string;
  /** PEM certificate registered on the app; assertions must be signed by its key. */
  certPem?: string;
  /**
   * Application permissions on Microsoft Graph with admin consent: with it the app also gets
   * tokens for https://graph.microsoft.com/.default carrying these roles ([] for an app whose
   * Mail.Send comes from RBAC for Applications, which puts nothing in the token).
   */
  graphRoles?: string[];
}

export interface FakeTokenEndpointOptions {
  tenantId: string;
  clients: Record<string, FakeClientRegistration>;
  /** Lifetime of issued access tokens; default 3600. MSAL renews tokens within 5 minutes of expiry. */
  tokenLifetimeSeconds?: number;
  /** Clock in epoch milliseconds for issuing and checking tokens; default Date.now. */
  now?: () => number;
}

export type GrantKind = 'secret' | 'assertion' | 'none';

/** One POST to the token endpoint, whatever came of it. */
export interface TokenRequestRecord {
  clientId: string;
  grantKind: GrantKind;
  status: number;
  /** The `error` code of a refused request. */
  error?: string;
}

export interface AccessTokenClaims {
  aud: string;
  iss: string;
  tid: string;
  appid: string;
  azp: string;
  roles: string[];
  iat: number;
  nbf: number;
  exp: number;
  oid: string;
  sub: string;
}

export type AccessTokenVerification = { ok: true; claims: AccessTokenClaims } | { ok: false; reason: string };

/** What the fake Exchange Online needs from the identity platform. */
export interface AccessTokenVerifier {
  verifyAccessToken(token: string): AccessTokenVerification;
}

export interface FakeTokenEndpoint extends AccessTokenVerifier {
  /** Authority base, `https://127.0.0.1:PORT`. */
  readonly url: string;
  /** `${url}/${tenantId}`: MSAL's `auth.authority`. */
  readonly authority: string;
  /** `127.0.0.1:PORT`: MSAL's `auth.knownAuthorities` entry. */
  readonly knownAuthority: string;
  /** `${authority}/oauth2/v2.0/token`. */
  readonly tokenEndpoint: string;
  /** JSON string for MSAL's `auth.authorityMetadata`. */
  readonly authorityMetadata: string;
  readonly tenantId: string;
  /** SPKI PEM of the key access tokens are signed with (RS256). */
  readonly publicKeyPem: string;
  /** Access tokens issued through the token endpoint (not counting `issueToken`). */
  readonly tokenRequests: number;
  /** Every POST to the token endpoint, in order. */
  readonly requests: readonly TokenRequestRecord[];
  /** Every HTTP request received, e.g. to prove no discovery GET happened. */
  readonly httpRequests: readonly { method: string; path: string }[];
  /** While down, new TCP connections, idle keep-alive connections and requests are destroyed at once. */
  setDown(down: boolean): void;
  /** The next `times` token POSTs get this status and body (JSON-encoded unless a string). */
  failNext(status: number, body: unknown, times?: number): void;
  /** Mints an access token directly (for negative tests: expired, wrong audience, no role...). */
  issueToken(clientId: string, overrides?: Partial<AccessTokenClaims> & JsonObject): string;
  close(): Promise<void>;
}

interface ClientEntry {
  graphRoles?: string[];
  secret?: string;
  cert?: { publicKey: KeyObject; x5t: string; x5tS256: string };
}

interface AadError {
  status: number;
  error: string;
  code: number;
  description: string;
}

const MAX_BODY_BYTES = 1 << 20;
const CLOCK_SKEW_SECONDS = 300;

function aadError(status: number, error: string, code: number, description: string): AadError {
  return { status, error, code, description };
}

function guidFrom(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store, no-cache',
    'x-ms-request-id': randomUUID(),
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

function claimsFrom(payload: JsonObject): AccessTokenClaims | null {
  const { aud, iss, tid, appid, azp, roles, iat, nbf, exp, oid, sub } = payload;
  if (
    typeof aud !== 'string' || typeof iss !== 'string' || typeof tid !== 'string' || typeof appid !== 'string' ||
    typeof azp !== 'string' || typeof iat !== 'number' || typeof nbf !== 'number' || typeof exp !== 'number' ||
    typeof oid !== 'string' || typeof sub !== 'string'
  ) {
    return null;
  }
  return { aud, iss, tid, appid, azp, roles: isStringArray(roles) ? roles : [], iat, nbf, exp, oid, sub };
}

export async function startFakeTokenEndpoint(opts: FakeTokenEndpointOptions): Promise<FakeTokenEndpoint> {
  const tenantId = opts.tenantId;
  const lifetime = opts.tokenLifetimeSeconds ?? 3600;
  const now = opts.now ?? Date.now;
  const nowSeconds = (): number => Math.floor(now() / 1000);
  const issuer = `https://sts.windows.net/${tenantId}/`;

  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const kid = createHash('sha256').update(publicKeyPem).digest('base64url').slice(0, 27);

  const clients = new Map<string, ClientEntry>();
  for (const [clientId, reg] of Object.entries(opts.clients)) {
    const entry: ClientEntry = {};
    if (reg.secret !== undefined) entry.secret = reg.secret;
    if (reg.graphRoles !== undefined) entry.graphRoles = reg.graphRoles;
    if (reg.certPem !== undefined) {
      const cert = new X509Certificate(reg.certPem);
      entry.cert = {
        publicKey: cert.publicKey,
        x5t: createHash('sha1').update(cert.raw).digest('base64url'),
        x5tS256: createHash('sha256').update(cert.raw).digest('base64url'),
      };
    }
    clients.set(clientId, entry);
  }

  let down = false;
  let issued = 0;
  const requests: TokenRequestRecord[] = [];
  const httpRequests: { method: string; path: string }[] = [];
  const scripted: { status: number; body: unknown }[] = [];
  let origin = '';

  function mint(clientId: string, grantKind: GrantKind, overrides: JsonObject = {}): string {
    const iat = nowSeconds();
    const oid = guidFrom(`${tenantId}/${clientId}`);
    const payload: JsonObject = {
      aud: EXCHANGE_ONLINE_RESOURCE,
      iss: issuer,
      iat,
      nbf: iat,
      exp: iat + lifetime,
      appid: clientId,
      azp: clientId,
      appidacr: grantKind === 'assertion' ? '2' : '1',
      idp: issuer,
      idtyp: 'app',
      oid,
      sub: oid,
      tid: tenantId,
      roles: [SEND_AS_APP_ROLE],
      uti: randomUUID().replace(/-/g, '').slice(0, 22),
      ver: '1.0',
      ...overrides,
    };
    return signJwt('RS256', { kid, x5t: kid }, payload, privateKey);
  }

  function verifyAccessToken(token: string): AccessTokenVerification {
    const decoded = decodeJwt(token);
    if (!decoded) return { ok: false, reason: 'token is not a JWT' };
    if (decoded.header.alg !== 'RS256') return { ok: false, reason: `unexpected alg ${String(decoded.header.alg)}` };
    if (!verifyJwtSignature(decoded, 'RS256', publicKey)) return { ok: false, reason: 'signature does not verify' };
    const claims = claimsFrom(decoded.payload);
    if (!claims) return { ok: false, reason: 'claims missing or mistyped' };
    const t = nowSeconds();
    if (claims.exp <= t) return { ok: false, reason: `token expired at ${claims.exp} (now ${t})` };
    if (claims.nbf > t + CLOCK_SKEW_SECONDS) return { ok: false, reason: 'token not yet valid' };
    if (claims.aud !== EXCHANGE_ONLINE_RESOURCE) return { ok: false, reason: `audience ${claims.aud} is not ${EXCHANGE_ONLINE_RESOURCE}` };
    if (claims.iss !== issuer || claims.tid !== tenantId) return { ok: false, reason: `issued for another tenant (${claims.tid})` };
    if (!claims.roles.includes(SEND_AS_APP_ROLE)) return { ok: false, reason: `role ${SEND_AS_APP_ROLE} missing` };
    return { ok: true, claims };
  }

  function audienceIsUs(aud: unknown): boolean {
    const auds = typeof aud === 'string' ? [aud] : isStringArray(aud) ? aud : [];
    const port = new URL(origin).port;
    return auds.some((a) => {
      try {
        const u = new URL(a);
        const path = u.pathname.replace(/\/+$/, '').toLowerCase();
        const t = tenantId.toLowerCase();
        return (
          u.protocol === 'https:' &&
          u.port === port &&
          ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname) &&
          (path === `/${t}/oauth2/v2.0/token` || path === `/${t}/v2.0` || path === `/${t}`)
        );
      } catch {
        return false;
      }
    });
  }

  function checkAssertion(clientId: string, client: ClientEntry, assertion: string): AadError | null {
    const invalid = (code: number, text: string): AadError => aadError(401, 'invalid_client', code, text);
    const decoded = decodeJwt(assertion);
    if (!decoded) return invalid(50027, 'AADSTS50027: JWT token is invalid or malformed.');
    const alg = decoded.header.alg;
    if (!isJwtAlgorithm(alg)) return invalid(5002738, `AADSTS5002738: Invalid JWT token. '${String(alg)}' is not a supported signature algorithm.`);
    const x5tS256 = decoded.header['x5t#S256'];
    const x5t = decoded.header.x5t;
    const cert = client.cert;
    const matches = cert !== undefined && ((typeof x5tS256 === 'string' && x5tS256 === cert.x5tS256) || (typeof x5t === 'string' && x5t === cert.x5t));
    if (!cert || !matches) {
      return invalid(700027, `AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${String(x5tS256 ?? x5t ?? '')}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${clientId}'.]`);
    }
    if (!verifyJwtSignature(decoded, alg, cert.publicKey)) {
      return invalid(7000274, 'AADSTS7000274: Client assertion contains an invalid signature.');
    }
    const { iss, sub, aud, exp, nbf } = decoded.payload;
    if (iss !== clientId || sub !== clientId) {
      return invalid(700021, `AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .`);
    }
    if (!audienceIsUs(aud)) {
      return invalid(700212, `AADSTS700212: No matching federated identity record found for presented assertion audience '${String(aud)}'.`);
    }
    const t = nowSeconds();
    if (typeof exp !== 'number' || exp + CLOCK_SKEW_SECONDS < t || (typeof nbf === 'number' && nbf - CLOCK_SKEW_SECONDS > t)) {
      return invalid(700024, 'AADSTS700024: Client assertion is not within its valid time range.');
    }
    return null;
  }

  function handleTokenRequest(pathTenant: string, form: URLSearchParams): { status: number; body: unknown; record: TokenRequestRecord } {
    const clientId = form.get('client_id') ?? '';
    const secret = form.get('client_secret');
    const assertion = form.get('client_assertion');
    const grantKind: GrantKind = assertion !== null ? 'assertion' : secret !== null ? 'secret' : 'none';
    const record: TokenRequestRecord = { clientId, grantKind, status: 200 };

    const refuse = (e: AadError) => {
      record.status = e.status;
      record.error = e.error;
      const timestamp = new Date(now()).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
      const traceId = randomUUID();
      const correlationId = form.get('client-request-id') ?? randomUUID();
      return {
        status: e.status,
        record,
        body: {
          error: e.error,
          error_description: `${e.description} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
          error_codes: [e.code],
          timestamp,
          trace_id: traceId,
          correlation_id: correlationId,
          error_uri: `${origin}/error?code=${e.code}`,
        },
      };
    };

    if (pathTenant.toLowerCase() !== tenantId.toLowerCase()) {
      return refuse(aadError(400, 'invalid_request', 90002, `AADSTS90002: Tenant '${pathTenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`));
    }
    const grantType = form.get('grant_type');
    if (grantType !== 'client_credentials') {
      return refuse(aadError(400, 'unsupported_grant_type', 70003, `AADSTS70003: The app requested an unsupported grant type '${grantType ?? ''}'.`));
    }
    if (!clientId) {
      return refuse(aadError(400, 'invalid_request', 900144, "AADSTS900144: The request body must contain the following parameter: 'client_id'."));
    }
    const client = clients.get(clientId);
    if (!client) {
      return refuse(aadError(400, 'unauthorized_client', 700016, `AADSTS700016: Application with identifier '${clientId}' was not found in the directory '${tenantId}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`));
    }
    const scope = form.get('scope');
    const forGraph = scope === GRAPH_TOKEN_SCOPE && client.graphRoles !== undefined;
    if (scope !== EXCHANGE_ONLINE_SCOPE && !forGraph) {
      return refuse(aadError(400, 'invalid_scope', 1002012, `AADSTS1002012: The provided value for scope ${scope ?? ''} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI). This fake only issues ${EXCHANGE_ONLINE_SCOPE}.`));
    }
    if (secret !== null && assertion !== null) {
      return refuse(aadError(400, 'invalid_request', 7000216, "AADSTS7000216: Only one of 'client_assertion' or 'client_secret' may be presented."));
    }
    if (assertion !== null) {
      if (form.get('client_assertion_type') !== JWT_BEARER_ASSERTION_TYPE) {
        return refuse(aadError(400, 'invalid_request', 7000216, `AADSTS7000216: 'client_assertion_type' must be '${JWT_BEARER_ASSERTION_TYPE}'.`));
      }
      const problem = checkAssertion(clientId, client, assertion);
      if (problem) return refuse(problem);
    } else if (secret !== null) {
      if (client.secret === undefined || secret !== client.secret) {
        return refuse(aadError(401, 'invalid_client', 7000215, `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`));
      }
    } else {
      return refuse(aadError(401, 'invalid_client', 7000218, "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'."));
    }

    issued += 1;
    return {
      status: 200,
      record,
      body: { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: mint(clientId, grantKind, forGraph ? { aud: GRAPH_TOKEN_RESOURCE, roles: client.graphRoles ?? [] } : {}) },
    };
  }

  function metadataFor(tenant: string): Record<string, unknown> {
    const base = `${origin}/${tenant}`;
    return {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${base}/v2.0`,
      request_uri_parameter_supported: false,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      tenant_region_scope: 'EU',
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com',
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', origin);
    httpRequests.push({ method, path: url.pathname });
    if (down) {
      req.socket.destroy();
      return;
    }
    const seg = url.pathname.split('/').filter(Boolean);
    const tenant = seg[0] ?? '';
    const rest = seg.slice(1).join('/');

    if (method === 'POST' && rest === 'oauth2/v2.0/token') {
      const form = new URLSearchParams(await readBody(req));
      const fault = scripted.shift();
      if (fault) {
        requests.push({ clientId: form.get('client_id') ?? '', grantKind: form.has('client_assertion') ? 'assertion' : form.has('client_secret') ? 'secret' : 'none', status: fault.status, error: 'scripted' });
        sendJson(res, fault.status, fault.body);
        return;
      }
      const outcome = handleTokenRequest(tenant, form);
      requests.push(outcome.record);
      sendJson(res, outcome.status, outcome.body);
      return;
    }
    if (method === 'GET' && rest === 'v2.0/.well-known/openid-configuration') {
      if (tenant.toLowerCase() !== tenantId.toLowerCase()) {
        sendJson(res, 400, { error: 'invalid_tenant', error_description: `AADSTS90002: Tenant '${tenant}' not found.` });
        return;
      }
      sendJson(res, 200, metadataFor(tenant));
      return;
    }
    if (method === 'GET' && rest === 'discovery/v2.0/keys') {
      const jwk = publicKey.export({ format: 'jwk' });
      sendJson(res, 200, { keys: [{ kty: 'RSA', use: 'sig', kid, x5t: kid, n: jwk.n, e: jwk.e, issuer }] });
      return;
    }
    sendJson(res, 404, { error: 'not_found', error_description: `fake token endpoint has no ${method} ${url.pathname}` });
  }

  const server: Server = createServer({ key: serverKey, cert: serverCert, minVersion: 'TLSv1.2' }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: String(err) });
      else res.destroy();
    });
  });
  server.prependListener('connection', (socket: Socket) => {
    if (down) socket.destroy();
  });
  // A client that drops the connection mid-handshake must not crash the test process.
  server.on('tlsClientError', () => undefined);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  origin = `https://127.0.0.1:${port}`;
  const authority = `${origin}/${tenantId}`;
  const meta = metadataFor(tenantId);

  return {
    url: origin,
    authority,
    knownAuthority: `127.0.0.1:${port}`,
    tokenEndpoint: `${authority}/oauth2/v2.0/token`,
    authorityMetadata: JSON.stringify({
      token_endpoint: meta.token_endpoint,
      authorization_endpoint: meta.authorization_endpoint,
      end_session_endpoint: meta.end_session_endpoint,
      issuer: meta.issuer,
      jwks_uri: meta.jwks_uri,
    }),
    tenantId,
    publicKeyPem,
    get tokenRequests() {
      return issued;
    },
    requests,
    httpRequests,
    setDown(value: boolean) {
      down = value;
      if (value) server.closeAllConnections();
    },
    failNext(status: number, body: unknown, times = 1) {
      for (let i = 0; i < times; i++) scripted.push({ status, body });
    },
    issueToken(clientId: string, overrides: JsonObject = {}) {
      return mint(clientId, 'secret', overrides);
    },
    verifyAccessToken,
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
