import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Tokens that tie a console form to the operator it was shown to. A browser sends basic
 * credentials to any page that posts to the console, so each POST must carry a token only the
 * console's own pages know: an HMAC of the operator's name under a key made at start (a restart
 * invalidates open forms, which then ask to reload the page).
 */
export class CsrfTokens {
  private readonly key = randomBytes(32);

  issue(principal: string, messageId: string): string {
    return createHmac('sha256', this.key).update(`${principal}\n${messageId}`).digest('base64url');
  }

  verify(principal: string, messageId: string, token: string | undefined): boolean {
    if (!token) return false;
    const expected = Buffer.from(this.issue(principal, messageId));
    const given = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
