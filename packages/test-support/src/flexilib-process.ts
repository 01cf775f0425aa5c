/**
 * startFlexilib() for the tests: the one spawner (@flexilib/plugin-abi/conformance)
 * running this checkout's packages/supervisor/bin/flexilib from the repository root.
 */
import { startFlexilib as start, type Flexilib, type StartOptions as SpawnOptions } from '@flexilib/plugin-abi/conformance';
import { flexilibBin, repoRoot } from './paths.js';

export { Flexilib, type Exit, type LogLine, type WaitOptions } from '@flexilib/plugin-abi/conformance';

/** As the spawner's options; `bin` is this checkout's and `cwd` defaults to the repository root. */
export type StartOptions = Omit<SpawnOptions, 'bin'>;

/**
 * Start flexilib and resolve once it serves (see StartOptions). On a failed
 * start the process group is killed and the error quotes flexilib's output.
 *
 * @example
 * const f = await startFlexilib({ config: writeConfig(tmp.dir, `/ = ${lib}\n`), workers: 2 });
 * t.after(() => f.kill());
 * assert.equal((await request(f.port, '/')).status, 200);
 */
export function startFlexilib(opts: StartOptions = {}): Promise<Flexilib> {
  return start({ cwd: repoRoot, ...opts, bin: flexilibBin });
}
