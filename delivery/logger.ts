/**
 * The logging the delivery core needs. pino loggers (agent) satisfy it directly; the Lambda
 * passes an adapter over Powertools Logger. Fields never carry bodies or secrets.
 */
export interface DeliveryLogger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export const silentLogger: DeliveryLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
