/**
 * Every operator-facing error of the worker, with a stable code. Match on
 * `error.code`, not on the class: codes survive the supervisor<->worker IPC.
 */
export const ERRORS = {
  FLX_CONFIG_INVALID: 'the proxy.ini file has errors',
  FLX_CONFIG_READ: 'the proxy.ini file cannot be read',
  FLX_LIB_NOT_FOUND: 'the library file does not exist',
  FLX_LIB_LOAD: 'the library could not be loaded (dlopen failed)',
  FLX_LIB_INCOMPLETE: 'the library file is truncated or not yet completely written (checked before dlopen)',
  FLX_LIB_QUARANTINED: 'the library crashed workers too often; its routes answer 503 until the file changes or SIGHUP',
  FLX_LIB_NO_HANDLER: 'the library does not export handle_request',
  FLX_LIB_ABI: "the library was built for another major ABI version, or exports neither flexi_abi_version nor FlexiLib's zigInit (set abi = flexilib for a C library written for FlexiLib)",
  FLX_LIB_FLEXILIB_ADAPTER: "the library speaks FlexiLib's interface and the adapter for it (dist/native/flexilib-adapter.so, built by pnpm build with Zig 0.11) is missing or does not load",
  FLX_LIB_INIT: 'flexi_init returned nonzero',
  FLX_PLUGIN_BAD_RESPONSE: 'the plugin produced a response node:http refuses (bad header or status)',
  FLX_SEND_TIMEOUT: 'a client took none of its pending answer for --send-timeout: its connection was closed',
  FLX_PLUGIN_TIMEOUT: "a threaded plugin call ran past its route's timeout (answered 504); the worker is replaced once its other requests finish",
  FLX_PLUGIN_BUSY: 'the threaded route queue is full',
  FLX_EXECUTOR_UNSUPPORTED: 'the route names an executor kind this build does not provide',
  FLX_UPSTREAM_UNAVAILABLE: 'an upstream pool has no healthy origin (503, answered at once)',
  FLX_UPSTREAM_CONNECT: 'an origin refused, reset or could not be reached, or failed mid-response (502, or a cut connection)',
  FLX_UPSTREAM_TIMEOUT: 'an origin exceeded connect_timeout or header_timeout (504), or idle_timeout mid-response (cut)',
  FLX_UPSTREAM_BAD_RESPONSE: 'an origin answered a status outside 200-599 or a head node:http refuses (502)',
  FLX_UPSTREAM_BODY_TOO_LARGE: "a proxied request body exceeds its route's max_body (413)",
  FLX_UPSTREAM_BAD_REQUEST: 'the client sent a body shorter or longer than its Content-Length (400)',
  FLX_WASM_NOT_FOUND: 'the .wasm module file does not exist or cannot be read',
  FLX_WASM_COMPILE: 'the file is not a valid WebAssembly module',
  FLX_WASM_EXPORTS: 'the module lacks a required export (handle_request, memory, flexi_wasm_alloc/free/release, flexi_abi_version)',
  FLX_WASM_IMPORTS: 'the module imports something the sandbox does not provide (only WASI preview1 functions are)',
  FLX_WASM_ABI: 'the module was built for another major ABI version',
  FLX_WASM_MEMORY: 'the module needs or reached more linear memory than its cap',
  FLX_WASM_INIT: 'instantiating the module, _initialize or flexi_init failed',
  FLX_WASM_TRAP: 'the module trapped during a request (answered 500; the instance is replaced)',
  FLX_WASM_EXIT: 'the module called proc_exit during a request (answered 500; the instance is replaced)',
  FLX_WASM_TIMEOUT: 'the module did not answer within its time limit (answered 504; the instance is stopped)',
  FLX_WASM_BAD_RESPONSE: 'the module returned a response pointing outside its memory (answered 502)',
  FLX_WASM_CRASHED: 'the thread running the module died (answered 502)',
  FLX_WORKERD_MISSING: 'the workerd binary that runs Cloudflare Workers is missing: install the npm package "workerd"',
  FLX_CFW_BUNDLE: "a Worker's module could not be read or bundled (answered 500 until it is fixed; the last good version keeps serving after a reload)",
  FLX_CFW_START: 'a workerd process did not start or rejected its config (answered 502)',
  FLX_CFW_CPU: "a Worker request used more CPU than its cpu_ms (answered 503, Cloudflare's error 1102; the isolate is recycled)",
  FLX_CFW_MEMORY: "a Worker's isolate exceeded its memory (answered 503, Cloudflare's error 1102; the isolate is recycled)",
  FLX_CFW_CRASHED: 'a workerd process died or cut the connection during a request (answered 502; it is replaced)',
  FLX_CFW_LOOP: "a request that already passed through one of this server's Workers reached a Worker route again, as passThroughOnException to this server does (answered 508, Cloudflare's error 1019)",
} as const;

export type ErrorCode = keyof typeof ERRORS;

/** Base error: a stable code and a one-line message naming what was wrong. */
export class FlexiError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'FlexiError';
  }
}

/** One problem in a config file, with its line (1-based). */
export interface ConfigProblem {
  file: string;
  line: number;
  message: string;
}

/** All problems found in one config file; the message lists each as file:line. */
export class ConfigError extends FlexiError {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super('FLX_CONFIG_INVALID', problems.map((p) => `${p.file}:${p.line}: ${p.message}`).join('\n'));
    this.problems = problems;
    this.name = 'ConfigError';
  }
}
