// Types of nodeBinary.mjs for the TypeScript that imports it (tests).
export const NODE_VERSION: string;
export const ARCHITECTURES: readonly string[];
export function nodeBinary(arch: string): string;
