// The single executable's main script. Node runs one CommonJS script from the blob, so the agent's
// ESM bundle (the files `npm start` runs, scripts/agentBundle.mjs) travels as the blob's assets and
// is imported through these module hooks under sea:/ URLs: its chunks load only when imported, as
// from dist/, so a local relay never parses the cloud code (it kept 3.7 MB more private memory
// and 12 MB more of the executable resident when the bundle was one CommonJS script).
'use strict';
const { getAsset } = require('node:sea');
const { registerHooks } = require('node:module');

const SCHEME = 'sea:';

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier.startsWith(SCHEME) || (context.parentURL?.startsWith(SCHEME) && (specifier.startsWith('./') || specifier.startsWith('../')))) {
      return { url: new URL(specifier, context.parentURL).href, shortCircuit: true };
    }
    return nextResolve(specifier, context);
  },
  load(url, context, nextLoad) {
    if (!url.startsWith(SCHEME)) return nextLoad(url, context);
    // Asset keys are the paths below the bundle's folder: smarthost.mjs, chunks/….mjs.
    return { format: 'module', source: getAsset(new URL(url).pathname.slice(1), 'utf8'), shortCircuit: true };
  },
});

// The entry (cli/main.ts) exits the process itself with the command's code.
import(`${SCHEME}/smarthost.mjs`).catch((error) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
