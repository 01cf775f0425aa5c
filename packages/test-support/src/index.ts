/**
 * @flexilib/test-support — the one harness of the integration tests: real
 * plugins compiled with cc, the real flexilib command on 127.0.0.1 and port 0,
 * its log lines, HTTP to it, bounded load, and cleanup of processes and temp
 * folders. One concern per file:
 *
 *   paths.ts             repoRoot, flexilibBin, includeDir, exampleSource
 *   plugins.ts           compilePlugin(), compilePluginFor() (zig cross build), fixture(), fixturesDir
 *   wasm-plugins.ts      compileWasm(): .wasm with zig cc
 *   temp.ts              tempDir()
 *   config.ts            writeConfig()
 *   eventually.ts        eventually(), until(), sleep()
 *   flexilib-process.ts  startFlexilib() -> Flexilib (logs, waitForLog, signal, stop, kill)
 *   run-flexilib.ts      runFlexilib(): the command run to completion; invoke(): flexilib invoke (plugin-abi's invokeFlexilib)
 *   free-port.ts         freePort(), freePorts()
 *   refused-port.ts      refusedPort(): a port that refuses connections, held from other listeners
 *   http.ts              request(), waitForAnswers()
 *   raw-http.ts          rawRequest(): exactly the headers given, over a fresh socket
 *   raw-connection.ts    RawConnection: raw bytes both ways on one connection (pipelining)
 *   admin.ts             admin(): JSON calls to the admin API
 *   load.ts              load(): keep-alive load loops
 *   crashes.ts           crashOnce()
 *   prometheus.ts        scrape(), parseMetrics(), promtoolCheck()
 *   tools.ts             requireTool(): an external program, or a failure naming it
 *   processes.ts         childProcesses(): a process's children from /proc (zombies too)
 */
export * from './paths.js';
export * from './plugins.js';
export * from './wasm-plugins.js';
export * from './temp.js';
export * from './config.js';
export * from './eventually.js';
export * from './flexilib-process.js';
export * from './run-flexilib.js';
export * from './free-port.js';
export * from './refused-port.js';
export * from './http.js';
export * from './raw-http.js';
export * from './raw-connection.js';
export * from './admin.js';
export * from './load.js';
export * from './crashes.js';
export * from './prometheus.js';
export * from './tools.js';
export * from './processes.js';
