import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Listening and closing for the AWS stand-ins: loopback only, port 0 unless a port is given (a
 * restart reuses the old one), and a close that does not wait for the SDK's keep-alive sockets.
 */

export const LOOPBACK = '127.0.0.1';

/** Starts listening on 127.0.0.1 and resolves with the port. */
export function listenOnLoopback(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(port, LOOPBACK, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Stops listening and drops every open connection (idle keep-alives and pending long polls). */
export function closeNow(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
}

export function loopbackUrl(port: number): string {
  return `http://${LOOPBACK}:${port}`;
}
