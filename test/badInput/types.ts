import type { AgentConfigInput } from '../../edge-agent/config/agentConfigSchema.ts';
import type { TestAgent } from '../../testbed/helpers/agentHarness.ts';
import type { RawSmtpClient } from '../../testbed/helpers/rawSmtpClient.ts';

/** A complete reply as the client reads it (the last line of a multi-line one); a RegExp where it carries an id. */
export type ExpectedReply = string | RegExp;

/** One write and the replies that must follow it, in order, before anything else is sent. */
export interface Exchange {
  /** Written in one call; strings are latin1 (one character, one byte). */
  send: string | Buffer;
  expect: readonly ExpectedReply[];
}

/** Files the runner writes before any agent starts. */
export interface SetupFiles {
  tlsCert: string;
  tlsKey: string;
}

/** An agent configuration some entries need; entries with the same setup share one agent. */
export interface AgentSetup {
  name: string;
  /** Overrides for startTestAgent (listen host, port and the folders are the harness's). */
  config(files: SetupFiles): AgentConfigInput;
}

/**
 * refused: the agent said no (an error reply or a closed connection) and kept nothing.
 * defused: the bytes were taken as message text and the hostile part had no effect (smuggling).
 * passed through: not refused by design, kept byte for byte (a long line, a NUL in the body).
 */
export type Outcome = 'refused' | 'defused' | 'passed through';

/** What the client does before the entry's own bytes: nothing, read the greeting, or greeting and EHLO. */
export type Opening = 'none' | 'greeting' | 'ehlo';

interface EntryBase {
  name: string;
  /** Why the expected replies are the right ones. */
  why: string;
  /** Default: the shared agent. */
  setup?: AgentSetup;
  outcome: Outcome;
  /** Exact bytes of every message this input leaves in the outbox, in arrival order; default none. */
  stored?: readonly (string | Buffer)[];
  /** A known product problem: the entry states what the agent should do and runs as a todo test. */
  knownIssue?: string;
}

/** A session written as data: the runner plays the exchanges and checks every reply. */
export interface ScriptedEntry extends EntryBase {
  /** Source address of the connection; default 127.0.0.1. */
  localAddress?: string;
  /** Default 'ehlo'. */
  opening?: Opening;
  exchanges: readonly Exchange[];
  /**
   * 'in step' (default): afterwards HELP gets its own 214 (no reply was left over) and QUIT its 221.
   * 'closed': the server closes the connection after the last reply, with nothing more said.
   */
  end?: 'in step' | 'closed';
}

export interface EntryContext {
  agent: TestAgent;
  files: SetupFiles;
  /** A raw session (closed by the runner afterwards if the entry leaves it open). */
  open(options?: { localAddress?: string; opening?: Opening }): Promise<RawSmtpClient>;
  /** Registers something the runner must close after the entry, pass or fail. */
  track(close: () => void): void;
}

/** A session that needs code: timing, TLS, many connections. */
export interface ProgrammedEntry extends EntryBase {
  run(context: EntryContext): Promise<void>;
}

export type BadInput = ScriptedEntry | ProgrammedEntry;

export function isProgrammed(entry: BadInput): entry is ProgrammedEntry {
  return 'run' in entry;
}
