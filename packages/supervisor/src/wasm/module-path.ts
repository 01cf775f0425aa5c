/**
 * The "path" of POST /services: a file the admin API reads on the server, so
 * it is confined. It resolves against the modules folder (the config file's,
 * or --modules-dir) and must stay inside it once symlinks are resolved, both
 * before opening (nothing outside is even opened) and after (the descriptor's
 * own path, so a symlink swapped in between is caught). The file must be a
 * regular one within MAX_MODULE_BYTES (readPluginFile: no /dev/zero, no FIFO).
 * Every refusal is a 400 on field "path" that names the path and the cause,
 * never the file's contents.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { MAX_MODULE_BYTES, PluginFileError, readPluginFile } from '@flexilib/worker';
import { FlexiError } from '@flexilib/contract';

const MAX_PATH = 4096;

function refuse(message: string): FlexiError {
  return new FlexiError('FLX_SERVICE_PATH_REFUSED', `path: ${message}`, { field: 'path' });
}

function inside(file: string, dir: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** The bytes of the module `given` names inside `modulesDir`; FLX_SERVICE_PATH_REFUSED (field path) otherwise. */
export function readModuleFile(modulesDir: string, given: unknown): Buffer {
  if (typeof given !== 'string' || given === '' || given.length > MAX_PATH || given.includes('\0')) {
    throw new FlexiError('FLX_SERVICE_INVALID', `path: expected the path of a .wasm file in the modules folder (${modulesDir}), at most ${MAX_PATH} characters`, { field: 'path' });
  }
  let root: string;
  try {
    root = realpathSync(modulesDir);
  } catch (err) {
    throw refuse(`the modules folder ${modulesDir} cannot be resolved (${(err as NodeJS.ErrnoException).code})`);
  }
  const where = `the modules folder ${modulesDir} (the config file's folder, or --modules-dir)`;
  let real: string;
  try {
    real = realpathSync(path.resolve(root, given));
  } catch {
    throw refuse(`"${given}": no such file in ${where}`);
  }
  if (!inside(real, root)) throw refuse(`"${given}" is outside ${where}`);
  let file;
  try {
    file = readPluginFile(real, MAX_MODULE_BYTES);
  } catch (err) {
    if (err instanceof PluginFileError) throw refuse(`"${given}": ${err.message.replace(real, 'the file')}`);
    throw err;
  }
  if (file.realPath !== undefined && !inside(file.realPath, root)) throw refuse(`"${given}" is outside ${where}`);
  return file.data;
}
