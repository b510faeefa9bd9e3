import { isSea } from 'node:sea';
import { DEFAULT_CONFIG_FILE, PACKAGED_CONFIG_FILE } from '../edge-agent/config/loadConfig.ts';

/**
 * The files tried without `--config`. The packaged binary (the Debian package, the container) reads
 * /etc/smarthost/smarthost.yaml first, so `smarthost queue` run from any folder sees the service's
 * spool; run from a checkout (`npm start`, `npx smarthost`) only ./smarthost.yaml is tried, and an
 * installed package never changes what a developer's tests read.
 */
export function defaultConfigFiles(packaged = isSea()): readonly string[] {
  return packaged ? [PACKAGED_CONFIG_FILE, DEFAULT_CONFIG_FILE] : [DEFAULT_CONFIG_FILE];
}
