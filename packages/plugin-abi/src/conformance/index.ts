/**
 * The conformance runner: a table of requests and expected responses (JSON),
 * run over HTTP against any flexilib server. `flexilib conformance` wraps it
 * for plugin authors; the examples' own table is `exampleCasesFile`.
 */
export { bodyBytes, exampleCasesFile, loadCases, validateCases, type BodySpec, type ConformanceCase } from './cases.js';
export { parseResponse, RawConnection, rawRequest, requestBytes, responseBody, responseSize, responseStatus, type RawRequest, type RawResponse } from './raw-http.js';
export { requestOf, runCase, runCases, type CaseResult, type ServerAddress } from './runner.js';
export { Flexilib, startFlexilib, type Exit, type LogLine, type StartOptions, type WaitOptions } from './flexilib-process.js';
export { freePort, freePorts } from './free-port.js';
export { invokeFlexilib, type Invoked } from './invoke.js';
