// A trivial Node Lambda function (runtime = nodejs, payload 2.0 events) on a route: every
// request becomes an AWS event, crosses to the supervisor's function host over loopback
// keep-alive HTTP and on to a warm environment process through the Lambda Runtime API, and
// its result maps back (docs/faas.md). The handler answers what the baseline answers:
// X-custom-foo: bar, text/plain, " N" with N the number of request headers.
// concurrency = 4 environments (the host's, shared by every worker); idle far beyond the run.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { defineScenario } from '../lib/scenario.ts';
import { flexilibMissing, startFlexilib } from '../lib/servers/flexilib.ts';

const HANDLER = `export const handler = async (event) => ({
  statusCode: 200,
  headers: { 'X-custom-foo': 'bar', 'content-type': 'text/plain' },
  body: ' ' + Object.keys(event.headers).length,
});
`;

export default defineScenario({
  id: 'flexilib-lambda-node',
  title: 'flexilib, Node Lambda route (AWS event, Runtime API)',
  role: 'subject',
  conformance: 'identical',
  unavailable: flexilibMissing,
  start: (ctx) => {
    mkdirSync(path.join(ctx.tmp, 'fn'), { recursive: true });
    writeFileSync(path.join(ctx.tmp, 'fn', 'index.mjs'), HANDLER);
    return startFlexilib(ctx, { ini: '/ = lambda:bench\n\n[lambda.bench]\nruntime = nodejs\ncode = fn\nhandler = index.handler\nconcurrency = 4\nidle = 30m' });
  },
});
