import { readFileSync } from 'node:fs';

/**
 * Config may give a certificate or key as a file path (agent YAML) or inline PEM (the cloud
 * secret's JSON); both mean the same thing.
 */
export function readPem(pathOrPem: string): string {
  return pathOrPem.trimStart().startsWith('-----BEGIN') ? pathOrPem : readFileSync(pathOrPem, 'utf8');
}
