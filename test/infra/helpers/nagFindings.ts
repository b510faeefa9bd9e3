import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, CfnElement, Stack, Validations } from 'aws-cdk-lib';
import { CfnInclude } from 'aws-cdk-lib/cloudformation-include';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { tempDir } from './tempDir.ts';

export interface Acknowledgement {
  /** The cdk-nag rule or finding id, e.g. `AwsSolutions-S1` or `AwsSolutions-IAM5[Resource::*]`. */
  id: string;
  reason: string;
  /** Construct path the acknowledgement was made on (it covers everything below). */
  path: string;
}

/** Every `Validations.of(c).acknowledge(...)` in the tree, read from construct metadata. */
export function acknowledgementsIn(root: IConstruct): Acknowledgement[] {
  const found: Acknowledgement[] = [];
  for (const construct of root.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [key, reason] of Object.entries(entry.data as Record<string, string>)) {
        found.push({ id: key.replace(/^annotation::/i, ''), reason, path: construct.node.path });
      }
    }
  }
  return found;
}

export interface RawFinding {
  id: string;
  logicalId: string;
}

/**
 * What the AwsSolutions checks find in a synthesized template when nothing is acknowledged: the
 * template is loaded into a fresh app with CfnInclude (same logical ids, same intrinsics) and
 * checked there, with synthesis told to report instead of failing.
 */
export function rawAwsSolutionsFindings(template: unknown): RawFinding[] {
  const dir = tempDir('nag');
  const templateFile = join(dir, 'template.json');
  writeFileSync(templateFile, JSON.stringify(withoutCdkBoilerplate(template)));
  const outdir = join(dir, 'out');
  const app = new App({ outdir, context: { '@aws-cdk/core:failSynthOnValidationErrors': false } });
  const stack = new Stack(app, 'Raw', { analyticsReporting: false });
  new CfnInclude(stack, 'Template', { templateFile });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth();
  const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: { pluginName: string; violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[] }[];
  };
  return report.pluginReports
    .filter((plugin) => plugin.pluginName === 'AwsSolutions')
    .flatMap((plugin) => plugin.violations)
    .flatMap((violation) =>
      violation.violatingConstructs.map((construct) => ({ id: violation.ruleName, logicalId: construct.constructPath.split('/').at(-1) ?? '' })),
    );
}

/** Construct path of every CloudFormation element of the stack, by logical id. */
export function pathsByLogicalId(stack: Stack): Map<string, string> {
  const paths = new Map<string, string>();
  for (const construct of stack.node.findAll()) {
    if (CfnElement.isCfnElement(construct)) paths.set(stack.getLogicalId(construct), construct.node.path);
  }
  return paths;
}

type Section = Record<string, unknown> | undefined;

/** The bootstrap version check and CDK metadata, which the including stack adds itself. */
function withoutCdkBoilerplate(template: unknown): unknown {
  const copy = structuredClone(template) as { Parameters?: Section; Rules?: Section; Resources?: Section; Conditions?: Section };
  delete copy.Parameters?.BootstrapVersion;
  delete copy.Rules?.CheckBootstrapVersion;
  delete copy.Resources?.CDKMetadata;
  delete copy.Conditions?.CDKMetadataAvailable;
  return copy;
}
