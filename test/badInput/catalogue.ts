import { hostname } from 'node:os';
import { QUEUED } from '../intake/helpers/smtpSession.ts';
import {
  authBruteForce,
  clientHelloOnPlainPort,
  commandsInjectedAfterStartTls,
  disconnectMidData,
  FROM,
  HELPDESK,
  idleAfterGreeting,
  idleMidData,
  plainAuth,
  plaintextInsteadOfClientHello,
  thousandConnections,
  TO,
  TRICKLE_BYSTANDER,
  tricklersHoldOnlyTheirShare,
  tricklingCommandLine,
  tricklingNoops,
  tricklingData,
  slowButSteadyData,
  SLOW_STEADY_BODY,
} from './hostileClients.ts';
import type { AgentSetup, BadInput, ExpectedReply, ScriptedEntry } from './types.ts';

/**
 * Hostile and broken inputs, each with the agent's exact answer. Replies without an enhanced
 * code come from smtp-server itself (its enhanced codes are off); the agent's own refusals
 * carry one (5.7.1, 5.3.4, 4.5.3...).
 */

// ---------------------------------------------------------------------------------------------
// Agents

const OFFICE = { name: 'office', address: '127.0.0.1' };
const LIMITS = { maxMessageSize: '256KB', maxRecipients: 5 };
const MAX_MESSAGE_BYTES = 256 * 1024;

/** Only 127.0.0.1 may relay, only for contoso.com, 256 KiB and 5 recipients per message. */
export const SHARED: AgentSetup = {
  name: 'shared agent',
  config: () => ({ clients: [OFFICE], senders: { allowedDomains: ['contoso.com'] }, listen: { ...LIMITS } }),
};

const REJECT_BARE_NEWLINES: AgentSetup = {
  name: 'bareNewlines: reject',
  config: () => ({ clients: [OFFICE], senders: { allowedDomains: ['contoso.com'] }, listen: { ...LIMITS, bareNewlines: 'reject' } }),
};

const REJECT_NUL_BYTES: AgentSetup = {
  name: 'nulBytes: reject',
  config: () => ({ clients: [OFFICE], senders: { allowedDomains: ['contoso.com'] }, listen: { ...LIMITS, nulBytes: 'reject' } }),
};

/** The default message size, for a header line of 20 MiB. */
const DEFAULT_SIZE: AgentSetup = {
  name: 'maxMessageSize 35MB',
  config: () => ({ clients: [OFFICE] }),
};

const WITH_TLS: AgentSetup = {
  name: 'listen.tls',
  config: (files) => ({ clients: [OFFICE], listen: { ...LIMITS, tls: { cert: files.tlsCert, key: files.tlsKey } } }),
};

const WITH_AUTH: AgentSetup = {
  name: 'a client with credentials on 127.0.0.2',
  config: () => ({ clients: [{ name: 'helpdesk', address: '127.0.0.2', auth: HELPDESK }, OFFICE], listen: { ...LIMITS } }),
};

const SHORT_IDLE: AgentSetup = {
  name: 'idleTimeout 1s, 3 connections per address',
  config: () => ({ listen: { ...LIMITS, idleTimeout: '1s', maxConnectionsPerClient: 3 } }),
};

const SEND_AS_CLIENT: AgentSetup = {
  name: 'a send-as client, 4 MB messages',
  config: () => ({ clients: [{ ...OFFICE, sendAs: 'scanner@contoso.com' }], listen: { ...LIMITS, maxMessageSize: '4MB' } }),
};

/** 1 MiB and more of short header fields with no blank line after them, then a body line. */
const ENDLESS_HEADER = `${Array.from({ length: 15_000 }, (_, i) => `X-Line-${String(i).padStart(5, '0')}: ${'v'.repeat(60)}\r\n`).join('')}\r\nbody\r\n`;

const HUNDRED_CONNECTIONS: AgentSetup = {
  name: 'maxConnections 100',
  // Per address as many as in all, so that the server-wide limit is the one that bites.
  config: () => ({ listen: { ...LIMITS, maxConnections: 100, maxConnectionsPerClient: 1_000 } }),
};

// ---------------------------------------------------------------------------------------------
// Building blocks

const ACCEPTED = '250 Accepted';
const GO_AHEAD = '354 End data with <CR><LF>.<CR><LF>';
const OPEN_TRANSACTION = `MAIL FROM:<${FROM}>\r\nRCPT TO:<${TO}>\r\nDATA\r\n`;
const TRANSACTION_OPENED = [ACCEPTED, ACCEPTED, GO_AHEAD];
const BARE_NEWLINE_REFUSED = '550 5.6.0 Message contains a bare CR or LF; line ends must be CRLF';
const TOO_BIG = '552 5.3.4 Message size exceeds fixed maximum message size';
const BAD_SENDER = '501 Error: Bad sender address syntax';
const BAD_RECIPIENT = '501 Error: Bad recipient address syntax';
const UNRECOGNIZED = '500 Error: command not recognized';
const TOO_MANY_UNRECOGNIZED = '421 Error: too many unrecognized commands';
const LINE_TOO_LONG = '421 Error: Command line too long';
const SMTP_SERVER_MAX_LINE = 16 * 1024;
const NUL_REFUSED = '550 5.6.0 Message contains a NUL byte';
const HEADER_LINE_REFUSED = '550 5.6.0 Message has a header line longer than 998 characters';
const unknownParameter = (command: string, name: string) => `555 5.5.4 ${command} parameter ${name} not recognized`;

const notAllowed = (domain: string) => `550 5.7.1 Sender domain ${domain} is not allowed to relay`;
const times = <T>(count: number, item: T): T[] => Array.from({ length: count }, () => item);
/** What the spool keeps when bare CRs and LFs are normalized (every line end CRLF) and NULs stripped. */
const normalized = (text: string) => text.replace(/\r\n|\r|\n/g, '\r\n').replace(/\0/g, '');
/** `count` lines of 100 bytes (98 + CRLF). */
const filler = (count: number) => `${'y'.repeat(98)}\r\n`.repeat(count);

/** A message sent with MAIL, RCPT and DATA pipelined, then its body (already ending in CRLF) and the end of data. */
function transaction(body: string, reply: ExpectedReply) {
  return [
    { send: OPEN_TRANSACTION, expect: TRANSACTION_OPENED },
    { send: `${body}.\r\n`, expect: [reply] },
  ];
}

const SMUGGLED_CRLF = 'MAIL FROM:<evil@contoso.com>\r\nRCPT TO:<victim@contoso.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nsecond\r\n';
const SMUGGLED_LF = 'MAIL FROM:<evil@contoso.com>\nRCPT TO:<victim@contoso.com>\nDATA\nSubject: smuggled\n\nsecond\n';

/**
 * An SMTP smuggling attempt: a fake end of data and a second transaction inside one message.
 * smtp-server ends DATA only on CRLF.CRLF, so the whole thing is one message; with `normalize`
 * the spool keeps it with CRLF line ends, with `reject` a bare CR or LF refuses it.
 */
function smuggling(label: string, fakeEnd: string, smuggled: string, policy: 'normalize' | 'reject' | 'no bare newline'): ScriptedEntry {
  const body = `Subject: smuggling\r\n\r\nfirst part${fakeEnd}${smuggled}`;
  const shown = JSON.stringify(fakeEnd).slice(1, -1);
  if (policy === 'reject') {
    return {
      name: `SMTP smuggling, ${label} "${shown}", bareNewlines reject`,
      why: 'only CRLF.CRLF ends DATA; the bare CR or LF refuses the whole message, so no hop after us sees a fake end',
      setup: REJECT_BARE_NEWLINES,
      outcome: 'refused',
      exchanges: transaction(`${body}\r\n`, BARE_NEWLINE_REFUSED),
    };
  }
  return {
    name: `SMTP smuggling, ${label} "${shown}"${policy === 'normalize' ? ', bareNewlines normalize' : ', bareNewlines reject'}`,
    why: 'only CRLF.CRLF ends DATA: one 250 for one message that carries the smuggled commands as text',
    setup: policy === 'normalize' ? SHARED : REJECT_BARE_NEWLINES,
    outcome: 'defused',
    exchanges: transaction(`${body}\r\n`, QUEUED),
    stored: [normalized(`${body}\r\n`)],
  };
}

/** The same attempt with a NUL in front of the dot, under listen.nulBytes: reject. */
function smugglingNulRejected(label: string, fakeEnd: string): ScriptedEntry {
  return {
    name: `SMTP smuggling, ${label} "${JSON.stringify(fakeEnd).slice(1, -1)}", nulBytes reject`,
    why: 'the NUL refuses the whole message, so no hop that ends a string at a NUL sees a fake end',
    setup: REJECT_NUL_BYTES,
    outcome: 'refused',
    exchanges: transaction(`Subject: smuggling\r\n\r\nfirst part${fakeEnd}${SMUGGLED_CRLF}\r\n`, NUL_REFUSED),
  };
}

// ---------------------------------------------------------------------------------------------
// The catalogue

export const CATALOGUE: readonly BadInput[] = [
  // SMTP smuggling (the seven classic fake ends are in test/intake/smuggling.test.ts)
  smuggling('doubled bare LFs', '\n\n.\n\n', SMUGGLED_CRLF, 'normalize'),
  smuggling('CR before each CRLF', '\r\r\n.\r\r\n', SMUGGLED_CRLF, 'normalize'),
  smuggling('bare LF end and LF-only commands', '\n.\n', SMUGGLED_LF, 'normalize'),
  smuggling('NUL after the dot', '\r\n.\0\r\n', SMUGGLED_CRLF, 'normalize'),
  smuggling('space before the dot', '\r\n .\r\n', SMUGGLED_CRLF, 'normalize'),
  smuggling('doubled bare LFs', '\n\n.\n\n', SMUGGLED_CRLF, 'reject'),
  smuggling('CR before each CRLF', '\r\r\n.\r\r\n', SMUGGLED_CRLF, 'reject'),
  smuggling('bare LF end and LF-only commands', '\n.\n', SMUGGLED_LF, 'reject'),
  smuggling('NUL after the dot', '\r\n.\0\r\n', SMUGGLED_CRLF, 'no bare newline'),
  // The NUL is stripped: the stored body holds the line "." between CRLFs, dot-stuffed again when forwarded.
  smuggling('NUL before the dot', '\r\n\0.\r\n', SMUGGLED_CRLF, 'normalize'),
  smugglingNulRejected('NUL before the dot', '\r\n\0.\r\n'),
  smugglingNulRejected('NUL after the dot', '\r\n.\0\r\n'),
  {
    name: 'SMTP smuggling, bare LF fake end split across two writes',
    why: 'the end of data is found the same way whatever the TCP segments',
    outcome: 'defused',
    exchanges: [
      { send: OPEN_TRANSACTION, expect: TRANSACTION_OPENED },
      { send: 'Subject: split\r\n\r\nfirst part\n.', expect: [] },
      { send: `\n${SMUGGLED_CRLF}\r\n.\r\n`, expect: [QUEUED] },
    ],
    stored: [normalized(`Subject: split\r\n\r\nfirst part\n.\n${SMUGGLED_CRLF}\r\n`)],
  },
  {
    name: 'a body whose last line ends in a bare CR, bareNewlines reject',
    why: 'the CR just before the CRLF that opens the end of data is bare too',
    setup: REJECT_BARE_NEWLINES,
    outcome: 'refused',
    exchanges: transaction('Subject: cr\r\n\r\nlast line ends in CR\r\r\n', BARE_NEWLINE_REFUSED),
  },

  // Oversize
  {
    name: 'MAIL FROM declaring SIZE over listen.maxMessageSize',
    why: 'RFC 1870: refused before any byte of the body, with the reply the agent gives for the bytes themselves',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<${FROM}> SIZE=${MAX_MESSAGE_BYTES + 1}\r\n`, expect: [TOO_BIG] }],
  },
  {
    name: 'SIZE that is not a number',
    why: 'size-value is 1*20DIGIT',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<${FROM}> SIZE=big\r\n`, expect: ['501 Error: Bad message size syntax'] }],
  },
  {
    name: 'SIZE of 21 digits',
    why: 'size-value is at most 20 digits, so no overflow to a small number',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<${FROM}> SIZE=${'9'.repeat(21)}\r\n`, expect: ['501 Error: Bad message size syntax'] }],
  },
  {
    name: 'SIZE declared small, body over the limit',
    why: 'the limit is enforced on the bytes, not on what the client declared',
    outcome: 'refused',
    exchanges: [
      { send: `MAIL FROM:<${FROM}> SIZE=1000\r\nRCPT TO:<${TO}>\r\nDATA\r\n`, expect: TRANSACTION_OPENED },
      { send: `Subject: liar\r\n\r\n${filler(3_000)}.\r\n`, expect: [TOO_BIG] },
    ],
  },
  {
    name: 'a 300 KiB body that is one line without any line end',
    why: 'over the limit, and the refusal still waits for the end of data so the session stays in step',
    outcome: 'refused',
    exchanges: transaction(`${'z'.repeat(300 * 1024)}\r\n`, TOO_BIG),
  },

  // Recipients
  {
    name: '1,000 RCPT TO pipelined in one write (maxRecipients 5)',
    why: 'the sixth and every later recipient gets 452 4.5.3; the transaction keeps the first five',
    outcome: 'refused',
    exchanges: [
      {
        send: `MAIL FROM:<${FROM}>\r\n${Array.from({ length: 1_000 }, (_, i) => `RCPT TO:<r${i}@contoso.com>\r\n`).join('')}RSET\r\n`,
        expect: [ACCEPTED, ...times(5, ACCEPTED), ...times(995, '452 4.5.3 Too many recipients'), '250 Flushed'],
      },
    ],
  },

  // Long lines
  {
    name: 'a body line of 1,001 bytes',
    why: 'RFC 5321 says 1,000 with CRLF, but a relay must not break a message: passed through byte for byte',
    outcome: 'passed through',
    exchanges: transaction(`Subject: long line\r\n\r\n${'a'.repeat(1_001)}\r\n`, QUEUED),
    stored: [`Subject: long line\r\n\r\n${'a'.repeat(1_001)}\r\n`],
  },
  {
    name: 'a body line of 70 KiB',
    why: 'over 64 KiB still passes through unchanged while the message is under maxMessageSize',
    outcome: 'passed through',
    exchanges: transaction(`Subject: longer line\r\n\r\n${'b'.repeat(70 * 1024)}\r\n`, QUEUED),
    stored: [`Subject: longer line\r\n\r\n${'b'.repeat(70 * 1024)}\r\n`],
  },
  {
    name: 'a command line of exactly 16 KiB',
    why: "smtp-server's limit for a command line (room for AUTH tokens) is inclusive",
    outcome: 'passed through',
    exchanges: [{ send: `NOOP ${'x'.repeat(SMTP_SERVER_MAX_LINE - 5)}\r\n`, expect: ['250 OK'] }],
  },
  {
    name: 'a command line of 16 KiB + 1',
    why: 'over the limit the connection is closed: a reader must not buffer a line without bound',
    outcome: 'refused',
    exchanges: [{ send: `NOOP ${'x'.repeat(SMTP_SERVER_MAX_LINE - 4)}\r\n`, expect: [LINE_TOO_LONG] }],
    end: 'closed',
  },
  {
    name: 'a command of 70 KiB that never ends its line',
    why: 'the limit applies to a partial line too',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<${'x'.repeat(70 * 1024)}`, expect: [LINE_TOO_LONG] }],
    end: 'closed',
  },
  {
    name: 'EHLO with a 1,001-byte host name',
    why: 'the name goes into logs and Received headers; over 300 bytes it is refused',
    outcome: 'refused',
    exchanges: [{ send: `EHLO ${'h'.repeat(1_001)}\r\n`, expect: ['501 Error: Bad hostname syntax'] }],
  },

  // NUL and other control bytes
  {
    name: 'NUL inside the MAIL FROM address',
    why: 'control characters in an address enable log and header injection',
    outcome: 'refused',
    exchanges: [{ send: 'MAIL FROM:<scan\0ner@contoso.com>\r\n', expect: [BAD_SENDER] }],
  },
  {
    name: 'NUL inside a command verb',
    why: '"NO\\0OP" is no command',
    outcome: 'refused',
    exchanges: [{ send: 'NO\0OP\r\n', expect: [UNRECOGNIZED] }],
  },
  {
    name: 'NUL in the EHLO host name',
    why: 'refused like any control character',
    outcome: 'refused',
    exchanges: [{ send: 'EHLO device\0.test\r\n', expect: ['501 Error: Bad hostname syntax'] }],
  },
  {
    name: 'a bare CR inside a MAIL FROM address (reply splitting)',
    why: 'a CR in an address could split a reply or a log line',
    outcome: 'refused',
    exchanges: [{ send: 'MAIL FROM:<scan\rner@contoso.com>\r\n', expect: [BAD_SENDER] }],
  },
  {
    name: 'ENVID with an xtext-encoded CRLF',
    why: 'decoded parameters are checked for control characters as well',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<${FROM}> ENVID=ab+0D+0ARCPT\r\n`, expect: [BAD_SENDER] }],
  },
  {
    name: 'NUL bytes in the body',
    why: 'listen.nulBytes strip (default): Exchange Online refuses NULs later, after the device was told 250; removed, the rest kept',
    outcome: 'defused',
    exchanges: transaction('Subject: nul\r\n\r\nbefore\0\0after\r\n', QUEUED),
    stored: ['Subject: nul\r\n\r\nbeforeafter\r\n'],
  },
  {
    name: 'a NUL byte in a header, nulBytes reject',
    why: 'listen.nulBytes reject: 550 5.6.0 and nothing stored',
    setup: REJECT_NUL_BYTES,
    outcome: 'refused',
    exchanges: transaction('Subject: n\0ul\r\n\r\nbody\r\n', NUL_REFUSED),
  },
  {
    name: 'a message that is nothing but NULs, nulBytes reject',
    why: 'a 64 KiB run of NULs is refused like a single one',
    setup: REJECT_NUL_BYTES,
    outcome: 'refused',
    exchanges: transaction(`${'\0'.repeat(64 * 1024)}\r\n`, NUL_REFUSED),
  },

  // Unknown MAIL FROM and RCPT TO parameters
  {
    name: 'MAIL FROM with an unknown parameter XYZ=1',
    why: 'RFC 5321 §4.1.1.11: a parameter of no advertised extension is answered 555',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<${FROM}> XYZ=1\r\n`, expect: [unknownParameter('MAIL FROM', 'XYZ')] }],
  },
  {
    name: 'MAIL FROM with a valueless unknown parameter after known ones',
    why: 'SIZE and BODY are fine; the unknown flag still refuses the command, and the transaction does not open',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<${FROM}> SIZE=100 BODY=8BITMIME XFLAG\r\nRCPT TO:<${TO}>\r\n`, expect: [unknownParameter('MAIL FROM', 'XFLAG'), '503 Error: need MAIL command'] }],
  },
  {
    name: 'RCPT TO with an unknown parameter',
    why: 'RFC 5321 §4.1.1.11; the sender stays accepted and a plain RCPT TO still works',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<${FROM}>\r\nRCPT TO:<${TO}> FOO=bar\r\nRCPT TO:<${TO}>\r\nRSET\r\n`, expect: [ACCEPTED, unknownParameter('RCPT TO', 'FOO'), ACCEPTED, '250 Flushed'] }],
  },
  {
    name: 'the parameters of advertised extensions (SIZE, BODY, SMTPUTF8, AUTH, RET, ENVID, NOTIFY, ORCPT)',
    why: 'every parameter EHLO offers is still accepted',
    outcome: 'passed through',
    exchanges: [
      {
        send: `MAIL FROM:<${FROM}> SIZE=100 BODY=8BITMIME SMTPUTF8 AUTH=<> RET=HDRS ENVID=abc\r\nRCPT TO:<${TO}> NOTIFY=FAILURE ORCPT=rfc822;${TO}\r\nRSET\r\n`,
        expect: [ACCEPTED, ACCEPTED, '250 Flushed'],
      },
    ],
  },

  // Header lines (RFC 5322: 998 characters)
  {
    name: 'a header line of exactly 998 characters',
    why: 'RFC 5322 §2.1.1 allows 998 without the CRLF: stored byte for byte',
    outcome: 'passed through',
    exchanges: transaction(`Subject: ${'s'.repeat(998 - 9)}\r\n\r\nbody\r\n`, QUEUED),
    stored: [`Subject: ${'s'.repeat(998 - 9)}\r\n\r\nbody\r\n`],
  },
  {
    name: 'a header line of 999 characters',
    why: 'over RFC 5322\'s limit Exchange Online refuses the message, after the device saw 250: refused at the end of data instead',
    outcome: 'refused',
    exchanges: transaction(`Subject: ${'s'.repeat(999 - 9)}\r\n\r\nbody\r\n`, HEADER_LINE_REFUSED),
  },
  {
    name: 'a folded header whose continuation line is 5,000 characters',
    why: 'the limit is per line, continuation lines included',
    outcome: 'refused',
    exchanges: transaction(`To: a@contoso.com,\r\n ${'b'.repeat(5_000)}@contoso.com\r\n\r\nbody\r\n`, HEADER_LINE_REFUSED),
  },
  {
    name: 'a single header line of 20 MiB',
    why: 'under maxMessageSize but far over 998: refused, and never written whole to the spool',
    setup: DEFAULT_SIZE,
    outcome: 'refused',
    exchanges: transaction(`X-Huge: ${'h'.repeat(20 * 1024 * 1024)}\r\n\r\nbody\r\n`, HEADER_LINE_REFUSED),
  },
  {
    name: 'a 2,000-character line in a message without a header section',
    why: 'a first line that is no header field starts the body (as Postfix reads it), and body lines are not limited',
    outcome: 'passed through',
    exchanges: transaction(`UPS on battery ${'u'.repeat(2_000)}\r\nRuntime left: 12 min\r\n`, QUEUED),
    stored: [`UPS on battery ${'u'.repeat(2_000)}\r\nRuntime left: 12 min\r\n`],
  },

  // Send-as: the header section must end where the rewrite can find it
  {
    name: 'a send-as client: header fields that do not end within 1 MiB',
    why: 'its From could not be rewritten at delivery (the header section has no end within 1,048,576 bytes): refused at the end of DATA, while the device waits, instead of 250 and a failure later',
    setup: SEND_AS_CLIENT,
    outcome: 'refused',
    exchanges: transaction(ENDLESS_HEADER, '552 5.3.4 Message header has no end within 1048576 bytes, too large to send as this client\'s address'),
  },
  {
    name: 'a send-as client: a message with no header section (UPS alert text)',
    why: 'as Postfix: a first line that is not a field starts the body; the relay builds the header (From, Date, Message-ID) at delivery and the spool keeps the text as sent',
    setup: SEND_AS_CLIENT,
    outcome: 'passed through',
    exchanges: transaction('UPS on battery\r\nRuntime left: 12 min\r\n', QUEUED),
    stored: ['UPS on battery\r\nRuntime left: 12 min\r\n'],
  },

  // Malformed addresses
  { name: 'MAIL FROM:<a@>', why: 'empty domain', outcome: 'refused', exchanges: [{ send: 'MAIL FROM:<a@>\r\n', expect: [BAD_SENDER] }] },
  {
    name: 'MAIL FROM with an unclosed angle bracket',
    why: 'a path is <...>',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<${FROM}\r\n`, expect: [BAD_SENDER] }],
  },
  {
    name: 'MAIL FROM with a closing bracket only',
    why: 'a path is <...>',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:${FROM}>\r\n`, expect: [BAD_SENDER] }],
  },
  {
    name: 'MAIL FROM with nested brackets',
    why: 'a path holds no angle brackets',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<<${FROM}>>\r\n`, expect: [BAD_SENDER] }],
  },
  {
    name: 'MAIL FROM with a space in the local part',
    why: 'an unquoted space ends the path',
    outcome: 'refused',
    exchanges: [{ send: 'MAIL FROM:<scan ner@contoso.com>\r\n', expect: [BAD_SENDER] }],
  },
  {
    name: 'MAIL FROM with a 300-character local part',
    why: 'a path is at most 256 octets',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<${'l'.repeat(300)}@contoso.com>\r\n`, expect: [BAD_SENDER] }],
  },
  {
    name: 'RCPT TO with a 1,000-character address',
    why: 'a path is at most 256 octets',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<${FROM}>\r\nRCPT TO:<${'r'.repeat(64)}@${'d'.repeat(931)}.com>\r\n`, expect: [ACCEPTED, BAD_RECIPIENT] }],
  },
  {
    name: 'RCPT TO:<> (the null path as a recipient)',
    why: 'only a sender may be null',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<${FROM}>\r\nRCPT TO:<>\r\n`, expect: [ACCEPTED, BAD_RECIPIENT] }],
  },
  {
    name: 'MAIL FROM with an empty domain label',
    why: '"contoso..com" is no domain',
    outcome: 'refused',
    exchanges: [{ send: 'MAIL FROM:<scanner@contoso..com>\r\n', expect: [BAD_SENDER] }],
  },
  {
    name: 'MAIL FROM with two SIZE parameters',
    why: 'a parameter may be given once',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<${FROM}> SIZE=10 SIZE=20\r\n`, expect: ['501 Error: duplicate SIZE parameter'] }],
  },
  {
    name: 'MAIL FROM with BODY=BINARYMIME',
    why: 'BINARYMIME needs CHUNKING, which is not offered',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<${FROM}> BODY=BINARYMIME\r\n`, expect: ['501 Invalid BODY parameter value. Must be 7BIT or 8BITMIME'] }],
  },

  // Sender domains (senders.allowedDomains: contoso.com)
  {
    name: 'a sender domain that is not allowed',
    why: 'the agent must not relay for any domain but its own',
    outcome: 'refused',
    exchanges: [{ send: 'MAIL FROM:<scanner@fabrikam.com>\r\n', expect: [notAllowed('fabrikam.com')] }],
  },
  {
    name: 'a source route through an allowed domain',
    why: 'RFC 5321: the route is ignored, so the sender judged is the one at the end',
    outcome: 'refused',
    exchanges: [{ send: 'MAIL FROM:<@contoso.com:scanner@fabrikam.com>\r\n', expect: [notAllowed('fabrikam.com')] }],
  },
  {
    name: 'an address literal as the sender domain',
    why: 'an IP literal is not an allowed domain',
    outcome: 'refused',
    exchanges: [{ send: 'MAIL FROM:<scanner@[127.0.0.1]>\r\n', expect: [notAllowed('[127.0.0.1]')] }],
  },
  {
    name: 'an allowed domain with a trailing dot',
    why: '"contoso.com." is refused as syntax before any domain comparison',
    outcome: 'refused',
    exchanges: [{ send: 'MAIL FROM:<scanner@contoso.com.>\r\n', expect: [BAD_SENDER] }],
  },
  {
    name: 'a whole transaction pipelined behind a refused MAIL FROM',
    why: 'no transaction opens: RCPT and DATA are out of order and the body lines are unknown commands',
    outcome: 'refused',
    exchanges: [
      {
        send: `MAIL FROM:<scanner@fabrikam.com>\r\nRCPT TO:<${TO}>\r\nDATA\r\nSubject: x\r\n\r\nhello\r\n.\r\n`,
        expect: [notAllowed('fabrikam.com'), '503 Error: need MAIL command', '503 Error: need RCPT command', ...times(4, UNRECOGNIZED)],
      },
    ],
  },

  // 8-bit addresses without SMTPUTF8
  {
    name: 'an 8-bit (latin1) byte in MAIL FROM without SMTPUTF8',
    why: 'RFC 6531: non-ASCII addresses need SMTPUTF8 (553 5.6.7); an invalid UTF-8 byte must never be replaced and relayed',
    outcome: 'refused',
    exchanges: [{ send: Buffer.from('MAIL FROM:<caf\xe9@contoso.com>\r\n', 'latin1'), expect: [/^553 5\.6\.7 /] }],
  },
  {
    name: 'a UTF-8 recipient without SMTPUTF8',
    why: 'RFC 6531: non-ASCII addresses need SMTPUTF8 (553 5.6.7); otherwise it fails only later, at Exchange Online',
    outcome: 'refused',
    exchanges: [{ send: Buffer.from(`MAIL FROM:<${FROM}>\r\nRCPT TO:<jürgen@contoso.com>\r\n`, 'utf8'), expect: [ACCEPTED, /^553 5\.6\.7 /] }],
  },

  // Commands out of order
  {
    name: 'RCPT TO before MAIL FROM',
    why: 'RFC 5321 sequence',
    outcome: 'refused',
    exchanges: [{ send: `RCPT TO:<${TO}>\r\n`, expect: ['503 Error: need MAIL command'] }],
  },
  {
    name: 'DATA before any RCPT TO',
    why: 'RFC 5321 sequence; nothing is read as a body',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<${FROM}>\r\nDATA\r\n`, expect: [ACCEPTED, '503 Error: need RCPT command'] }],
  },
  {
    name: 'DATA when every recipient was refused',
    why: 'a refused RCPT does not count',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<${FROM}>\r\nRCPT TO:<not an address>\r\nDATA\r\n`, expect: [ACCEPTED, BAD_RECIPIENT, '503 Error: need RCPT command'] }],
  },
  {
    name: 'MAIL FROM twice',
    why: 'one transaction at a time',
    outcome: 'refused',
    exchanges: [{ send: `MAIL FROM:<${FROM}>\r\nMAIL FROM:<other@contoso.com>\r\n`, expect: [ACCEPTED, '503 Error: nested MAIL command'] }],
  },
  {
    name: 'MAIL FROM before EHLO',
    why: 'the client must say who it is first',
    outcome: 'refused',
    opening: 'greeting',
    exchanges: [{ send: `MAIL FROM:<${FROM}>\r\n`, expect: ['503 Error: send HELO/EHLO first'] }],
  },
  {
    name: 'EHLO without a host name',
    why: 'RFC 5321 syntax',
    outcome: 'refused',
    opening: 'greeting',
    exchanges: [{ send: 'EHLO\r\n', expect: ['501 Error: syntax: EHLO hostname'] }],
  },
  {
    name: 'a whole transaction pipelined after QUIT',
    why: 'nothing after QUIT is read, so nothing is queued',
    outcome: 'refused',
    exchanges: [{ send: `QUIT\r\n${OPEN_TRANSACTION}Subject: after quit\r\n\r\nx\r\n.\r\n`, expect: ['221 Bye'] }],
    end: 'closed',
  },

  // Unknown commands
  {
    name: 'unknown and unoffered commands (XYZZY, BDAT, EXPN, TURN, an empty line)',
    why: '500 for each, and the session goes on',
    outcome: 'refused',
    exchanges: [{ send: 'XYZZY\r\nBDAT 10 LAST\r\nEXPN staff\r\nTURN\r\n\r\n', expect: times(5, UNRECOGNIZED) }],
  },
  {
    name: 'STARTTLS on an agent without listen.tls',
    why: "never served with smtp-server's built-in certificate; the plaintext session goes on",
    outcome: 'refused',
    exchanges: [{ send: `STARTTLS\r\nMAIL FROM:<${FROM}>\r\n`, expect: [UNRECOGNIZED, ACCEPTED] }],
  },
  {
    name: 'ten unknown commands in a row',
    why: 'the tenth closes the connection',
    outcome: 'refused',
    exchanges: [{ send: Array.from({ length: 10 }, (_, i) => `FOO${i}\r\n`).join(''), expect: [...times(9, UNRECOGNIZED), TOO_MANY_UNRECOGNIZED] }],
    end: 'closed',
  },

  // Pipelining floods
  {
    name: '200 RSET in one write',
    why: 'every one answered, in order, nothing dropped',
    outcome: 'passed through',
    exchanges: [{ send: 'RSET\r\n'.repeat(200), expect: times(200, '250 Flushed') }],
  },
  {
    name: '200 NOOP in one write',
    why: 'every one answered, in order, nothing dropped',
    outcome: 'passed through',
    exchanges: [{ send: 'NOOP\r\n'.repeat(200), expect: times(200, '250 OK') }],
  },
  {
    name: '200 MAIL FROM / RSET pairs in one write',
    why: 'the sender check runs 200 times without the replies getting out of order',
    outcome: 'passed through',
    exchanges: [{ send: `MAIL FROM:<${FROM}>\r\nRSET\r\n`.repeat(200), expect: times(200, [ACCEPTED, '250 Flushed']).flat() }],
  },
  {
    name: 'five whole transactions in one write, each body before its 354',
    why: 'RFC 2920 does not allow it (nc host 25 < session.txt does it): every transaction still gets its four replies and is stored once',
    outcome: 'passed through',
    exchanges: [
      {
        send: Array.from({ length: 5 }, (_, i) => `${OPEN_TRANSACTION}Subject: batch ${i}\r\n\r\nmessage ${i}\r\n.\r\n`).join(''),
        expect: times(5, [...TRANSACTION_OPENED, QUEUED]).flat(),
      },
    ],
    stored: Array.from({ length: 5 }, (_, i) => `Subject: batch ${i}\r\n\r\nmessage ${i}\r\n`),
  },
  {
    name: '10,000 NOOP in one write',
    why: 'the server reads on only as its replies drain, and answers all',
    outcome: 'passed through',
    exchanges: [{ send: 'NOOP\r\n'.repeat(10_000), expect: times(10_000, '250 OK') }],
  },
  {
    name: '200 garbage lines in one write',
    why: 'the tenth unknown command closes the connection and the rest is never run',
    outcome: 'refused',
    exchanges: [{ send: Array.from({ length: 200 }, (_, i) => `\x7f\x01garbage ${i} \xff\xfe\r\n`).join(''), expect: [...times(9, UNRECOGNIZED), TOO_MANY_UNRECOGNIZED] }],
    end: 'closed',
  },

  // Other protocols on the SMTP port
  {
    name: 'an HTTP request after the banner',
    why: 'a browser tricked into talking to port 25 is cut off',
    outcome: 'refused',
    opening: 'greeting',
    exchanges: [{ send: 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', expect: ['421 HTTP requests not allowed'] }],
    end: 'closed',
  },
  {
    name: 'an HTTP POST sent before the banner (cross-protocol attack)',
    why: 'a client that talks before the greeting is no SMTP client',
    outcome: 'refused',
    opening: 'none',
    exchanges: [{ send: `POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 40\r\n\r\n${OPEN_TRANSACTION}`, expect: [`421 ${hostname()} You talk too soon`] }],
    end: 'closed',
  },
  {
    name: 'a TLS ClientHello on the plain port',
    why: 'the handshake fails on the SMTP banner and the connection closes',
    outcome: 'refused',
    run: clientHelloOnPlainPort,
  },

  // Access
  {
    name: 'a source address outside clients (127.0.0.2)',
    why: 'refused at connect, before any command',
    outcome: 'refused',
    localAddress: '127.0.0.2',
    opening: 'none',
    exchanges: [{ send: '', expect: ['554 5.7.1 127.0.0.2 is not allowed to relay through this server'] }],
    end: 'closed',
  },

  // Odd messages
  {
    name: 'an empty DATA',
    why: 'nothing to refuse: a relay passes an empty message on (0 bytes kept)',
    outcome: 'passed through',
    exchanges: transaction('', QUEUED),
    stored: [''],
  },
  {
    name: 'a message that is a header without a blank line or body',
    why: 'kept as sent in the spool; it is all header, and at delivery the relay appends the missing fields and the blank line that ends the header (the outbox copy below is shown without the added fields)',
    outcome: 'passed through',
    exchanges: transaction('Subject: header only\r\n', QUEUED),
    stored: ['Subject: header only\r\n\r\n'],
  },
  {
    name: 'the client disconnects in the middle of DATA',
    why: 'no 250 was given, so nothing may be kept, and the temp file must not leak',
    outcome: 'refused',
    run: disconnectMidData,
  },

  // STARTTLS
  {
    name: 'commands injected after STARTTLS in the same packet (CVE-2011-0411)',
    why: 'plaintext buffered before the handshake is dropped; inside TLS the injected MAIL FROM never happened',
    setup: WITH_TLS,
    outcome: 'refused',
    run: commandsInjectedAfterStartTls,
  },
  {
    name: 'STARTTLS with an argument',
    why: 'RFC 3207: STARTTLS takes none',
    setup: WITH_TLS,
    outcome: 'refused',
    exchanges: [{ send: 'STARTTLS now\r\n', expect: ['501 Error: syntax: STARTTLS'] }],
  },
  {
    name: 'plaintext instead of a ClientHello after 220 Ready to start TLS',
    why: 'the handshake fails and the connection closes without a plaintext reply',
    setup: WITH_TLS,
    outcome: 'refused',
    run: plaintextInsteadOfClientHello,
  },

  // AUTH
  {
    name: 'AUTH from a client that has no credentials configured',
    why: 'AUTH is neither offered nor served to it',
    setup: WITH_AUTH,
    outcome: 'refused',
    exchanges: [{ send: `AUTH PLAIN ${plainAuth('helpdesk', HELPDESK.password)}\r\n`, expect: [UNRECOGNIZED] }],
  },
  {
    name: 'MAIL FROM before AUTH from a client that must authenticate',
    why: 'its credentials are required',
    setup: WITH_AUTH,
    outcome: 'refused',
    localAddress: '127.0.0.2',
    exchanges: [{ send: `MAIL FROM:<${FROM}>\r\n`, expect: ['530 5.7.0 Authentication required'] }],
  },
  {
    name: 'AUTH with a mechanism that is not offered (CRAM-MD5)',
    why: 'PLAIN and LOGIN only',
    setup: WITH_AUTH,
    outcome: 'refused',
    localAddress: '127.0.0.2',
    exchanges: [{ send: 'AUTH CRAM-MD5\r\n', expect: ['504 Error: Unrecognized authentication type'] }],
  },
  {
    name: 'AUTH PLAIN with a blob that is not base64',
    why: 'refused before any credential check',
    setup: WITH_AUTH,
    outcome: 'refused',
    localAddress: '127.0.0.2',
    exchanges: [{ send: 'AUTH PLAIN !!not-base64!!\r\n', expect: ['501 Error: invalid userdata'] }],
  },
  {
    name: 'AUTH LOGIN cancelled with "*"',
    why: 'RFC 4954: the exchange is aborted with 501',
    setup: WITH_AUTH,
    outcome: 'refused',
    localAddress: '127.0.0.2',
    exchanges: [
      { send: 'AUTH LOGIN\r\n', expect: ['334 VXNlcm5hbWU6'] },
      { send: '*\r\n', expect: ['501 Authentication aborted'] },
    ],
  },
  {
    name: 'AUTH brute force: five wrong passwords over two connections',
    why: 'always 535 5.7.8, each answer slower; the right password still works at once',
    setup: WITH_AUTH,
    outcome: 'refused',
    run: authBruteForce,
  },

  // Slowloris
  {
    name: 'an idle client after the banner',
    why: 'closed by listen.idleTimeout with smtp-server\'s reply',
    setup: SHORT_IDLE,
    outcome: 'refused',
    run: idleAfterGreeting,
  },
  {
    name: 'an idle client in the middle of DATA',
    why: 'timed out, nothing kept, the temp file removed',
    setup: SHORT_IDLE,
    outcome: 'refused',
    run: idleMidData,
  },
  {
    name: 'trickling clients on one address hold at most maxConnectionsPerClient connections',
    why: 'the next one from that address gets 421 4.7.0, and other devices are still served',
    setup: SHORT_IDLE,
    outcome: 'refused',
    run: tricklersHoldOnlyTheirShare,
    stored: [TRICKLE_BYSTANDER],
  },
  {
    name: 'a client trickling a command line, one byte per 0.3 × idleTimeout',
    why: 'every byte restarts the idle timer, but nothing is progress: 421 4.4.2 after twice the idle timeout',
    setup: SHORT_IDLE,
    outcome: 'refused',
    run: tricklingCommandLine,
  },
  {
    name: 'a client trickling NOOP after NOOP, never a message',
    why: 'commands that complete are not progress either: 250 to each, then 421 4.4.2',
    setup: SHORT_IDLE,
    outcome: 'refused',
    run: tricklingNoops,
  },
  {
    name: 'a client trickling its body in DATA byte by byte',
    why: '421 4.4.2 after twice the idle timeout; nothing kept, the temp file removed',
    setup: SHORT_IDLE,
    outcome: 'refused',
    run: tricklingData,
  },
  {
    name: 'a large message over a slow link: 64 KiB, a pause of 0.8 × idleTimeout, and again',
    why: 'every 64 KiB of DATA is progress: accepted although the transfer outlasts the no-progress deadline',
    setup: SHORT_IDLE,
    outcome: 'passed through',
    run: slowButSteadyData,
    stored: [SLOW_STEADY_BODY],
  },
  // Connection flood
  {
    name: '1,000 simultaneous connections (maxConnections 100)',
    why: '100 get the banner, 900 get 421 and are closed; the agent serves the next device',
    setup: HUNDRED_CONNECTIONS,
    outcome: 'refused',
    run: thousandConnections,
  },
];
