import { request } from 'node:https';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';

/**
 * MSAL's own client uses the global fetch, which cannot be told to trust an extra CA without
 * another dependency. This one is used only when `upstream.ca` is set (a private authority, a
 * TLS-inspecting proxy, the tests' fake identity platform), so that the CA the operator gave for
 * the upstream is trusted for its token authority too.
 */
export class HttpsNetworkClient implements INetworkModule {
  constructor(
    private readonly ca: string,
    private readonly timeoutMs = 30_000,
  ) {}

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    return this.send<T>('GET', url, options, timeout);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>('POST', url, options);
  }

  private send<T>(method: 'GET' | 'POST', url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    const limit = timeout ?? this.timeoutMs;
    return new Promise((resolve, reject) => {
      const req = request(url, { method, headers: options?.headers, ca: this.ca, timeout: limit }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(res.headers)) {
            if (value !== undefined) {
              headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
            }
          }
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ headers, status: res.statusCode ?? 0, body: (text ? JSON.parse(text) : {}) as T });
          } catch (error) {
            reject(new Error(`token authority answered ${res.statusCode} with a body that is not JSON`, { cause: error }));
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error(`token authority did not answer within ${limit} ms`)));
      req.on('error', reject);
      req.end(options?.body);
    });
  }
}
