import { classifyReply } from '../../../delivery/classifyReply.ts';
import type { UpstreamConfig } from '../../../delivery/upstreamConfig.ts';
import type { DoctorReport } from '../report.ts';
import type { SmtpSession } from '../smtpSession.ts';
import type { TokenResult } from './token.ts';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** AUTH XOAUTH2 (oauth2) or AUTH LOGIN (basic) as the configured mailbox. */
export async function checkAuth(report: DoctorReport, session: SmtpSession, upstream: UpstreamConfig, token: TokenResult | undefined): Promise<void> {
  const auth = upstream.auth;
  if (auth.type === 'none') {
    report.info('auth', 'upstream.auth.type is none: no login (a connector that knows this office by its IP address or certificate)');
    return;
  }
  let command: string;
  let final;
  if (auth.type === 'oauth2') {
    command = 'AUTH XOAUTH2';
    // The token goes on its own line: some servers refuse a 1.5 KB AUTH line.
    const start = await session.command(command);
    final = start.code === 334 ? await session.command(b64(`user=${auth.user}\x01auth=Bearer ${token?.token ?? ''}\x01\x01`)) : start;
    // RFC 7628: an error challenge is answered with an empty line to get the final reply.
    if (final.code === 334) final = await session.command('');
  } else {
    command = 'AUTH LOGIN';
    const start = await session.command(command);
    const user = start.code === 334 ? await session.command(b64(auth.user)) : start;
    final = user.code === 334 ? await session.command(b64(auth.password)) : user;
  }
  if (final.code === 235) {
    report.ok('auth', `${command} accepted as ${auth.user}`);
    return;
  }
  const c = classifyReply({ response: final.text, responseCode: final.code, command }, { mailbox: auth.user });
  if (auth.type === 'oauth2' && /^535 5\.7\.3\b/.test(final.text)) {
    const sp = token?.claims.oid ?? '<object id of the Enterprise Application>';
    report.fail(
      'auth',
      `Exchange Online refused the token for ${auth.user} (${final.text}): the app has no service principal in Exchange Online, it was registered with the App Registration's object id instead of the Enterprise Application's, or it has no permission on the mailbox`,
      `in Exchange Online PowerShell (Connect-ExchangeOnline): New-ServicePrincipal -AppId ${auth.clientId} -ObjectId ${sp} -DisplayName "smarthost relay"; ` +
        `then Add-MailboxPermission -Identity ${auth.user} -User ${sp} -AccessRights FullAccess ` +
        `(${sp} is the token's oid: the Enterprise Application's object id; Get-ServicePrincipal | fl shows what is registered)`,
    );
  }
  if (auth.type === 'oauth2' && /^535 5\.7\.139\b/.test(final.text)) {
    // With a token this is not basic auth being off: SMTP AUTH itself is off for the mailbox or tenant.
    report.fail(
      'auth',
      `${command} as ${auth.user} refused: ${final.text}: SMTP AUTH is disabled for the mailbox or the tenant, or an authentication policy blocks it`,
      `in Exchange Online PowerShell: Set-CASMailbox -Identity ${auth.user} -SmtpClientAuthenticationDisabled $false ` +
        '(or for the tenant: Set-TransportConfig -SmtpClientAuthenticationDisabled $false); if an authentication policy applies, Get-CASMailbox ' +
        `${auth.user} | fl AuthenticationPolicy and allow SMTP in it (Set-AuthenticationPolicy -AllowBasicAuthSmtp only matters for AUTH LOGIN)`,
    );
  }
  report.fail('auth', `${command} as ${auth.user} refused: ${final.text}`, c.operatorAction);
}
