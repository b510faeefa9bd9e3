import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { TEST_CREDENTIALS, TEST_REGION } from './awsTestEnv.ts';
import { closeNow, listenOnLoopback, loopbackUrl } from './loopbackServer.ts';

/**
 * Secrets Manager stand-in on 127.0.0.1: the JSON 1.1 protocol the SDK speaks (POST /,
 * `X-Amz-Target: secretsmanager.<Operation>`), for GetSecretValue and PutSecretValue only.
 * A secret is found by its ARN or its name; unknown ids get 400 ResourceNotFoundException.
 */

export interface LocalSecretsManager {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  /** Explicit endpoint, region and static credentials. */
  readonly client: SecretsManagerClient;
  /** GetSecretValue requests answered so far (found or not): shows what a cache saved. */
  readonly getCalls: number;
  /**
   * Creates the secret or gives it a new current version (as a rotation does). `arn` may be a full
   * ARN (`arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf`) or a bare name, for which an
   * ARN is made up. Returns the ARN and the new version id.
   */
  setSecret(arn: string, secretString: string): { arn: string; versionId: string };
  /**
   * Creates a secret with no value, as `CreateSecret` without SecretString does (and a stack's
   * secret before the operator fills it): no version, so GetSecretValue fails as in AWS with
   * ResourceNotFoundException "...can't find the specified secret value for staging label:
   * AWSCURRENT"; PutSecretValue or setSecret gives it its first version.
   */
  createEmptySecret(arn: string): { arn: string };
  stop(): Promise<void>;
}

interface StoredSecret {
  arn: string;
  name: string;
  /** undefined: created without a value, no version yet. */
  secretString: string | undefined;
  versionId: string | undefined;
  createdDate: Date;
}

const ARN_PATTERN = /^arn:aws[a-z-]*:secretsmanager:[^:]*:\d{12}:secret:(.+)-[A-Za-z0-9]{6}$/;

/** A full ARN as given, or an ARN made up for a bare name. */
function arnAndName(arnOrName: string): { arn: string; name: string } {
  const match = ARN_PATTERN.exec(arnOrName);
  const name = match?.[1] ?? arnOrName;
  return { arn: match ? arnOrName : `arn:aws:secretsmanager:${TEST_REGION}:123456789012:secret:${name}-${randomUUID().slice(0, 6)}`, name };
}

class ServiceError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startLocalSecretsManager(): Promise<LocalSecretsManager> {
  const secrets = new Map<string, StoredSecret>();
  let getCalls = 0;

  const find = (secretId: unknown): StoredSecret => {
    const secret = typeof secretId === 'string' ? (secrets.get(secretId) ?? [...secrets.values()].find((candidate) => candidate.name === secretId)) : undefined;
    if (!secret) throw new ServiceError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    return secret;
  };

  const setSecret = (arnOrName: string, secretString: string): { arn: string; versionId: string } => {
    const existing = secrets.get(arnOrName) ?? [...secrets.values()].find((candidate) => candidate.name === arnOrName);
    const versionId = randomUUID();
    if (existing) {
      Object.assign(existing, { secretString, versionId, createdDate: new Date() });
      return { arn: existing.arn, versionId };
    }
    const { arn, name } = arnAndName(arnOrName);
    secrets.set(arn, { arn, name, secretString, versionId, createdDate: new Date() });
    return { arn, versionId };
  };

  const createEmptySecret = (arnOrName: string): { arn: string } => {
    const { arn, name } = arnAndName(arnOrName);
    secrets.set(arn, { arn, name, secretString: undefined, versionId: undefined, createdDate: new Date() });
    return { arn };
  };

  const operations: Record<string, (input: Record<string, unknown>) => unknown> = {
    GetSecretValue(input) {
      getCalls += 1;
      const secret = find(input.SecretId);
      if (secret.secretString === undefined) {
        throw new ServiceError('ResourceNotFoundException', "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT");
      }
      return {
        ARN: secret.arn,
        Name: secret.name,
        SecretString: secret.secretString,
        VersionId: secret.versionId,
        VersionStages: ['AWSCURRENT'],
        // JSON protocols carry timestamps as epoch seconds.
        CreatedDate: secret.createdDate.getTime() / 1000,
      };
    },
    PutSecretValue(input) {
      const secret = find(input.SecretId);
      if (typeof input.SecretString !== 'string') throw new ServiceError('InvalidParameterException', 'SecretString is required by this stand-in.');
      const { versionId } = setSecret(secret.arn, input.SecretString);
      return { ARN: secret.arn, Name: secret.name, VersionId: versionId, VersionStages: ['AWSCURRENT'] };
    },
  };

  const respond = (response: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    response.writeHead(status, {
      'content-type': 'application/x-amz-json-1.1',
      'content-length': Buffer.byteLength(text),
      'x-amzn-requestid': randomUUID(),
    });
    response.end(text);
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    try {
      const target = request.headers['x-amz-target'];
      const operation = typeof target === 'string' && target.startsWith('secretsmanager.') ? operations[target.slice('secretsmanager.'.length)] : undefined;
      if (request.method !== 'POST' || !operation) {
        throw new ServiceError('UnknownOperationException', `this stand-in does not implement ${String(target)}`);
      }
      let input: unknown;
      try {
        input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      } catch {
        throw new ServiceError('SerializationException', 'request body is not JSON');
      }
      respond(response, 200, operation((input ?? {}) as Record<string, unknown>));
    } catch (error) {
      if (error instanceof ServiceError) respond(response, 400, { __type: error.type, message: error.message });
      else respond(response, 500, { __type: 'InternalServiceError', message: String(error) });
    }
  };

  const server = createServer((request, response) => {
    void handle(request, response);
  });
  const endpoint = loopbackUrl(await listenOnLoopback(server));
  const client = new SecretsManagerClient({ endpoint, region: TEST_REGION, credentials: TEST_CREDENTIALS });

  return {
    endpoint,
    client,
    get getCalls() {
      return getCalls;
    },
    setSecret,
    createEmptySecret,
    async stop() {
      client.destroy();
      await closeNow(server);
    },
  };
}
