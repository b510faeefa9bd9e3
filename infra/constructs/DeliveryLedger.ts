import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { LEDGER_KEY, LEDGER_TTL_ATTRIBUTE } from '../../contract/cloudResources.ts';

export interface DeliveryLedgerProps {
  /**
   * Records expire through DynamoDB TTL on the contract's TTL attribute (the function sets it);
   * this only decides what happens to the table when the stack is deleted.
   * @default RemovalPolicy.DESTROY (the records only matter while messages can still be redelivered)
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The delivery function's records of what it sent, keyed on the agent's message id: a message SQS
 * delivers again after a successful send is recognised and not sent twice, and recipients already
 * accepted are skipped on a retry. On demand (a few writes a day in an office), with
 * point-in-time recovery.
 */
export class DeliveryLedger extends Construct {
  public readonly table: Table;

  constructor(scope: Construct, id: string, props: DeliveryLedgerProps = {}) {
    super(scope, id);
    this.table = new Table(this, 'Table', {
      partitionKey: { name: LEDGER_KEY, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: LEDGER_TTL_ATTRIBUTE,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // Encrypted at rest with a DynamoDB-owned key: no KMS charges, no KMS permissions.
      encryption: TableEncryption.DEFAULT,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
    });
  }
}
