import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as z from 'zod';
import { CONDITION_IDS } from './alertConditions.ts';

const conditionIdSchema = z.enum(CONDITION_IDS);

const noticeSchema = z.object({
  id: z.string(),
  kind: z.enum(['raised', 'cleared']),
  condition: conditionIdSchema,
  title: z.string(),
  detail: z.string(),
  fix: z.string().optional(),
  at: z.string(),
  since: z.string().optional(),
  webhooksOwed: z.array(z.string()),
  emailOwed: z.boolean(),
  emailBlocked: z.object({ reason: z.string(), since: z.string() }).optional(),
});

/** What survives a restart: raised conditions (so none is raised twice), notices owed, and the streaks the conditions count. */
export const alertStateSchema = z.object({
  version: z.literal(1),
  active: z.partialRecord(conditionIdSchema, z.object({ since: z.string() })),
  pending: z.array(noticeSchema),
  streaks: z.object({
    failedInARow: z.number().int().nonnegative(),
    lastFailure: z.string().optional(),
    unreachableSince: z.number().optional(),
    unreachableError: z.string().optional(),
  }),
});

export type AlertState = z.infer<typeof alertStateSchema>;

export function emptyAlertState(): AlertState {
  return { version: 1, active: {}, pending: [], streaks: { failedInARow: 0 } };
}

/** Reads the state; a missing file is a first start. A damaged one is reported by the caller, which starts afresh. */
export async function readAlertState(path: string): Promise<AlertState> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyAlertState();
    throw error;
  }
  return alertStateSchema.parse(JSON.parse(text));
}

/** Written to a temp file, fsync'd and renamed over the old one: a crash leaves the old state or the new, never half. */
export async function writeAlertState(path: string, state: AlertState): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.tmp`;
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(JSON.stringify(state, null, 2));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
}
