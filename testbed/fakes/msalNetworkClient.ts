import { request } from 'node:https';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';

/**
 * MSAL node 7 sends its requests with the global fetch and has no option for an extra CA (no
 * `customAgentOptions`, no proxy settings any more: `system` takes only `networkClient`). Tests
 * hand this to `system.networkClient` so MSAL trusts the test CA, without NODE_EXTRA_CA_CERTS.
 * It uses no keep-alive, so closing the fake never waits on an idle MSAL socket, and it refuses
 * any URL that is not on the loopback interface, so a test can never reach Microsoft (or DNS).
 */
export class CaTrustingNetworkClient implements INetworkModule {
  /** URLs requested, in order, e.g. to prove that MSAL did no discovery. */
  readonly calls: { method: 'GET' | 'POST'; url: string }[] = [];

  constructor(private readonly ca: string) {}

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    return this.send<T>('GET', url, options, timeout);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>('POST', url, options);
  }

  private send<T>(method: 'GET' | 'POST', url: string, options?: NetworkRequestOptions, timeout = 10_000): Promise<NetworkResponse<T>> {
    this.calls.push({ method, url });
    const host = new URL(url).hostname;
    if (!['127.0.0.1', '[::1]', 'localhost'].includes(host)) {
      return Promise.reject(new Error(`test network client refuses ${method} ${url}: only loopback is allowed in tests`));
    }
    return new Promise<NetworkResponse<T>>((resolve, reject) => {
      const req = request(url, { method, headers: options?.headers, ca: this.ca, agent: false, timeout }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(res.headers)) {
            if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
          }
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ headers, status: res.statusCode ?? 0, body: (text ? JSON.parse(text) : {}) as T });
          } catch (err) {
            reject(new Error(`${method} ${url} answered ${res.statusCode} with a body that is not JSON`, { cause: err }));
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out after ${timeout} ms`)));
      req.on('error', reject);
      req.end(method === 'POST' ? (options?.body ?? '') : undefined);
    });
  }
}
