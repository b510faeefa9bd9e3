import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { agentConfigSchema, type AgentConfigInput } from '../../edge-agent/config/agentConfigSchema.ts';
import { runDoctor } from '../../edge-agent/doctor/runDoctor.ts';
import type { UpstreamConfigInput } from '../../delivery/upstreamConfig.ts';

/** Collects what doctor prints. */
export class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString('utf8');
    cb();
  }
}

export interface DoctorRun {
  code: number;
  out: string;
}

/** `smarthost doctor` in this process, for an upstream block (and more of the agent's config). */
export async function doctor(upstream: UpstreamConfigInput, extra: AgentConfigInput = {}, options: { now?: () => number; sendTestTo?: string } = {}): Promise<DoctorRun> {
  const config = agentConfigSchema.parse({ spool: { dir: join(tmpdir(), 'doctor-unused') }, ...extra, upstream });
  const out = new Capture();
  const code = await runDoctor(config, { out, ...options });
  return { code, out: out.text };
}

/** The line of a step with the given status, and the fix line under it. */
export function line(out: string, status: 'ok' | 'WARN' | 'FAIL' | 'info', step: string): string {
  const lines = out.split('\n');
  const i = lines.findIndex((l) => l.startsWith(status.padEnd(4)) && l.slice(6).startsWith(step.padEnd(10)));
  assert.notEqual(i, -1, `no ${status} ${step} line in:\n${out}`);
  const next = lines[i + 1] ?? '';
  return next.trimStart().startsWith('fix:') ? `${lines[i]}\n${next}` : (lines[i] ?? '');
}

/** A pool's part of the output for one mailbox: its heading line and the lines up to the next heading. */
export function mailboxSection(out: string, mailbox: string): string {
  const parts = out.split(/^(?===)/m);
  const part = parts.find((p) => new RegExp(`^== mailbox \\d+ of \\d+: ${mailbox.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')},`).test(p));
  assert.ok(part, `no heading for ${mailbox} in:\n${out}`);
  return part;
}
