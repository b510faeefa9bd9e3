import { App, Validations, type AppProps } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readSettings, type SmarthostSettings } from './settings.ts';
import { SmarthostStack } from './SmarthostStack.ts';

export interface CreateAppOptions {
  /** Context, as cdk.json and `-c key=value` give it to the CLI. */
  readonly context?: AppProps['context'];
  /** @default - the CLI's output directory, or a temporary one */
  readonly outdir?: string;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** @default - functions/lambda/handler.ts */
  readonly deliveryFunctionEntry?: string;
}

/**
 * The smarthost app with the AwsSolutions checks of cdk-nag attached: any finding that is not
 * acknowledged (with its reason, next to the construct it concerns) fails the synth.
 */
export function createApp(options: CreateAppOptions = {}): { app: App; stack: SmarthostStack; settings: SmarthostSettings } {
  const app = new App({ context: options.context, outdir: options.outdir });
  const settings = readSettings({ context: (key) => app.node.tryGetContext(key), env: options.env });
  const stack = new SmarthostStack(app, settings.stackName, {
    env: { account: settings.account, region: settings.region },
    alarmEmail: settings.alarmEmail,
    failureNoticeTo: settings.failureNoticeTo,
    delayedNoticeAfter: settings.delayedNoticeAfter,
    customerManagedKey: settings.customerManagedKey,
    agentTrust: settings.agentTrust,
    deliveryFunctionEntry: options.deliveryFunctionEntry,
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack, settings };
}
