/** Paths of the workspace under test. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const at = (...parts: string[]): string => path.join(ROOT, ...parts);

