/**
 * "The README's test command": the first line inside a fenced code block of
 * README.md that runs the package's `test` script (`pnpm test`, `npm test`,
 * `pnpm run test ...`), without a leading `$ ` prompt or a trailing `# comment`.
 */
export function readmeTestCommand(markdown: string): string | undefined {
  let fence: string | undefined;
  for (const raw of markdown.split('\n')) {
    const opener = /^\s*(`{3,}|~{3,})/.exec(raw);
    if (opener) {
      if (fence === undefined) fence = opener[1];
      else if (opener[1].startsWith(fence) && raw.trim() === opener[1]) fence = undefined;
      continue;
    }
    if (fence === undefined) continue;
    const line = raw.replace(/^\s*\$\s+/, '').replace(/\s+#.*$/, '').trim();
    if (/^(pnpm|npm|yarn)\s+(run\s+)?test(\s|$)/.test(line)) return line;
  }
  return undefined;
}
