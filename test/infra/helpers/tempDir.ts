import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let base: string | undefined;

/** A fresh directory under one per-process temporary directory, removed when the process exits. */
export function tempDir(name: string): string {
  if (!base) {
    const created = mkdtempSync(join(tmpdir(), 'smarthost-infra-'));
    base = created;
    process.on('exit', () => rmSync(created, { recursive: true, force: true }));
  }
  return mkdtempSync(join(base, `${name}-`));
}

/** `tempDir` plus a path inside it. */
export function tempFile(name: string, file: string): string {
  return join(tempDir(name), file);
}
