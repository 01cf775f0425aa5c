/** proxy.ini files written by tests. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';

/** Write `text` as `dir/name` (proxy.ini by default) and return its path. */
export function writeConfig(dir: string, text: string, name = 'proxy.ini'): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}
