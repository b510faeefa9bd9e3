export interface EnvProblem {
  path: PropertyKey[];
  message: string;
}

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Replaces `${NAME}` in every string value (not in keys) of parsed YAML. Substitution works on
 * values rather than on the file's text so a secret containing quotes, colons or newlines cannot
 * change the document's structure. Substituted text is not scanned again, so a secret that happens
 * to contain `${` stays as it is. `$${` gives a literal `${`.
 */
export function substituteEnv(value: unknown, env: NodeJS.ProcessEnv): { value: unknown; problems: EnvProblem[] } {
  const problems: EnvProblem[] = [];
  const walk = (node: unknown, path: PropertyKey[]): unknown => {
    if (typeof node === 'string') return substituteString(node, env, (message) => problems.push({ path, message }));
    if (Array.isArray(node)) return node.map((item, index) => walk(item, [...path, index]));
    if (typeof node === 'object' && node !== null) {
      return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, walk(item, [...path, key])]));
    }
    return node;
  };
  return { value: walk(value, []), problems };
}

function substituteString(text: string, env: NodeJS.ProcessEnv, report: (message: string) => void): string {
  if (!text.includes('${')) return text;
  let out = '';
  let index = 0;
  while (index < text.length) {
    if (text.startsWith('$${', index)) {
      out += '${';
      index += 3;
      continue;
    }
    if (text.startsWith('${', index)) {
      const end = text.indexOf('}', index + 2);
      if (end < 0) {
        report("unterminated '${' (write '$${' for a literal '${')");
        return out + text.slice(index);
      }
      const name = text.slice(index + 2, end);
      const replacement = env[name];
      if (!VARIABLE_NAME.test(name)) report(`'\${${name}}' is not a valid environment variable reference (expected \${NAME})`);
      else if (replacement === undefined) report(`environment variable ${name} is not set`);
      else out += replacement;
      index = end + 1;
      continue;
    }
    out += text[index];
    index += 1;
  }
  return out;
}
