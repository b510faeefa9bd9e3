/**
 * CDK entry point (cdk.json: "app": "npx tsx infra/app.ts"). Context: docs/deploy.md.
 * Synthesizes offline and without credentials (fallback account and region, see settings.ts).
 */
import { createApp } from './createApp.ts';
import { SettingsError } from './settings.ts';

try {
  createApp().app.synth();
} catch (error) {
  if (error instanceof SettingsError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}
