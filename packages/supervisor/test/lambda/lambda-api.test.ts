/**
 * AWS Lambda's API on the admin listener, driven by the real AWS SDK
 * (@aws-sdk/client-lambda, a dummy region and credentials, the endpoint set to
 * flexilib's admin port): every Invoke mode, Tail logs with START/END/REPORT,
 * function errors, 404 and 413 in AWS's shapes, names given as ARNs, a
 * runtime streaming its response (and failing in its trailers); then
 * CreateFunction (a bash custom runtime and a Node function, from zips),
 * Get/List, UpdateFunctionCode while invocations run (none fails), Delete,
 * refusals naming their field, and a restart that serves the created
 * functions again from the state folder.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetFunctionCommand,
  InvokeCommand,
  LambdaClient,
  ListFunctionsCommand,
  ResourceNotFoundException,
  UpdateFunctionCodeCommand,
} from '@aws-sdk/client-lambda';
import { zipSync } from 'fflate';
import { startFlexilib, tempDir, writeConfig } from '@flexilib/test-support';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const text = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('utf8');
const json = (b: Uint8Array | undefined) => JSON.parse(text(b));

function zipOf(files: Record<string, string>): Uint8Array {
  return zipSync(Object.fromEntries(Object.entries(files).map(([n, t]) => [n, Buffer.from(t)])));
}

const bashZip = () => zipOf({ bootstrap: readFileSync(path.join(FIXTURES, 'bash-fn/bootstrap'), 'utf8'), 'function.sh': readFileSync(path.join(FIXTURES, 'bash-fn/function.sh'), 'utf8') });
const nodeZip = (version: string) => zipOf({ 'index.mjs': `export const handler = async (event) => ({ version: ${JSON.stringify(version)}, got: event });\n` });

test('the Lambda API through the AWS SDK: invoke modes, logs, errors, create/update/delete, persistence', { timeout: 120_000 }, async (t) => {
  const tmp = tempDir('lambda-api');
  t.after(() => tmp.cleanup());
  const config = writeConfig(
    tmp.dir,
    `/x = lambda:misc\n\n[lambda.hello]\nbootstrap = ${FIXTURES}/bash-fn/bootstrap\ninterpreter = bash\nhandler = function.handler\nenv.GREETING = hi\n\n` +
      `[lambda.misc]\nruntime = nodejs\ncode = ${FIXTURES}/node-misc\nhandler = index.handler\ntimeout = 2s\n\n` +
      `[lambda.stream]\nbootstrap = ${FIXTURES}/stream-fn/bootstrap\n`,
  );
  let server = await startFlexilib({ config, workers: 1, accessLog: false });
  t.after(() => server.stop());
  const client = () => new LambdaClient({ endpoint: `http://127.0.0.1:${server.adminPort}`, region: 'eu-west-3', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' }, maxAttempts: 1 });
  let lambda = client();

  // RequestResponse with Tail: the payload, and the invocation's log with Lambda's records.
  const r1 = await lambda.send(new InvokeCommand({ FunctionName: 'hello', Payload: Buffer.from('{"action":"hi"}'), LogType: 'Tail' }));
  assert.equal(r1.StatusCode, 200);
  assert.equal(r1.ExecutedVersion, '$LATEST');
  assert.equal(r1.FunctionError, undefined);
  assert.match(json(r1.Payload).body, /^hi from bash, pid \d+$/);
  const log = Buffer.from(r1.LogResult!, 'base64').toString('utf8');
  const id = /START RequestId: ([0-9a-f-]{36}) Version: \$LATEST/.exec(log)?.[1];
  assert.ok(id, log);
  assert.match(log, /event received by hello \(15 bytes\)/);
  assert.match(log, new RegExp(`END RequestId: ${id}`));
  assert.match(log, new RegExp(`REPORT RequestId: ${id}\\tDuration: [\\d.]+ ms\\tBilled Duration: \\d+ ms\\tMemory Size: 128 MB\\tMax Memory Used: \\d+ MB\\tInit Duration: [\\d.]+ ms`));

  // A warm second call: no Init Duration; the full ARN and a partial one name the same function.
  const arn = 'arn:aws:lambda:us-east-1:123456789012:function:hello';
  const r2 = await lambda.send(new InvokeCommand({ FunctionName: arn, Payload: Buffer.from('{}'), LogType: 'Tail' }));
  assert.equal(json(r2.Payload).body, json(r1.Payload).body, 'the same warm environment');
  assert.doesNotMatch(Buffer.from(r2.LogResult!, 'base64').toString(), /Init Duration/);
  assert.equal((await lambda.send(new InvokeCommand({ FunctionName: '123456789012:function:hello:$LATEST', Payload: Buffer.from('{}') }))).StatusCode, 200);

  // Event: 202 at once, run in the background (its record reaches the log stream); DryRun: 204.
  const from = server.logs.length;
  const ev = await lambda.send(new InvokeCommand({ FunctionName: 'misc', InvocationType: 'Event', Payload: Buffer.from('{"action":"evt"}') }));
  assert.equal(ev.StatusCode, 202);
  await server.waitForLog((l) => l.lambda === 'misc' && String(l.msg).endsWith('INFO\taction evt'), { from, timeoutMs: 10_000 });
  assert.equal((await lambda.send(new InvokeCommand({ FunctionName: 'misc', InvocationType: 'DryRun' }))).StatusCode, 204);

  // Function errors: 200 with X-Amz-Function-Error and the runtime's error document.
  const bad = await lambda.send(new InvokeCommand({ FunctionName: 'misc', Payload: Buffer.from('{"action":"throw"}'), LogType: 'Tail' }));
  assert.equal(bad.StatusCode, 200);
  assert.equal(bad.FunctionError, 'Unhandled');
  assert.deepEqual({ ...json(bad.Payload), trace: undefined }, { errorType: 'TypeError', errorMessage: 'thrown on purpose', trace: undefined });
  assert.match(Buffer.from(bad.LogResult!, 'base64').toString(), /ERROR\tInvoke Error/);
  const bashBad = await lambda.send(new InvokeCommand({ FunctionName: 'hello', Payload: Buffer.from('{"action":"fail"}') }));
  assert.equal(bashBad.FunctionError, 'Unhandled');
  assert.equal(json(bashBad.Payload).errorType, 'Bash.HandlerFailed');

  // A runtime streaming its response (chunked, response mode streaming); a failure in its trailers.
  const streamed = await lambda.send(new InvokeCommand({ FunctionName: 'stream', Payload: Buffer.from('{}') }));
  assert.equal(text(streamed.Payload), 'chunk 0;chunk 1;chunk 2;');
  assert.equal(streamed.FunctionError, undefined);
  const streamFail = await lambda.send(new InvokeCommand({ FunctionName: 'stream', Payload: Buffer.from('{"action":"fail-midway"}') }));
  assert.equal(streamFail.FunctionError, 'Unhandled');
  assert.deepEqual(json(streamFail.Payload), { errorType: 'Stream.Failed', errorMessage: 'failed midway' });

  // AWS's error shapes: the SDK's own exception classes.
  await assert.rejects(lambda.send(new InvokeCommand({ FunctionName: 'nope', Payload: Buffer.from('{}') })), (e: Error) => e instanceof ResourceNotFoundException && /Function not found/.test(e.message));
  await assert.rejects(lambda.send(new InvokeCommand({ FunctionName: 'hello', Qualifier: '7', Payload: Buffer.from('{}') })), (e: Error) => e.name === 'ResourceNotFoundException');
  await assert.rejects(lambda.send(new InvokeCommand({ FunctionName: 'misc', Payload: Buffer.alloc(6 * 1024 * 1024 + 1, 32) })), (e: Error) => e.name === 'RequestTooLargeException');
  await assert.rejects(lambda.send(new InvokeCommand({ FunctionName: 'misc', InvocationType: 'Event', Payload: Buffer.alloc(1024 * 1024 + 1, 32) })), (e: Error) => e.name === 'RequestTooLargeException');

  // CreateFunction: a custom runtime and a Node function from zips.
  const created = await lambda.send(new CreateFunctionCommand({ FunctionName: 'made-bash', Runtime: 'provided.al2023', Role: 'arn:aws:iam::123456789012:role/x', Handler: 'function.handler', Code: { ZipFile: bashZip() }, Environment: { Variables: { GREETING: 'created' } }, Timeout: 5, MemorySize: 256 }));
  assert.equal(created.FunctionName, 'made-bash');
  assert.equal(created.MemorySize, 256);
  assert.equal(created.State, 'Active');
  assert.match(json((await lambda.send(new InvokeCommand({ FunctionName: 'made-bash', Payload: Buffer.from('{}') }))).Payload).body, /^created from bash/);
  await lambda.send(new CreateFunctionCommand({ FunctionName: 'made-node', Runtime: 'nodejs20.x', Role: 'arn:aws:iam::123456789012:role/x', Handler: 'index.handler', Code: { ZipFile: nodeZip('one') } }));
  assert.deepEqual(json((await lambda.send(new InvokeCommand({ FunctionName: 'made-node', Payload: Buffer.from('{"n":1}') }))).Payload), { version: 'one', got: { n: 1 } });
  const got = await lambda.send(new GetFunctionCommand({ FunctionName: 'made-node' }));
  assert.equal(got.Configuration?.Runtime, 'nodejs20.x');
  assert.equal(got.Configuration?.Timeout, 3);
  const list = await lambda.send(new ListFunctionsCommand({}));
  assert.deepEqual(list.Functions?.map((f) => f.FunctionName).sort(), ['hello', 'made-bash', 'made-node', 'misc', 'stream']);

  // Refusals, each naming its field.
  await assert.rejects(lambda.send(new CreateFunctionCommand({ FunctionName: 'made-node', Runtime: 'nodejs20.x', Role: 'r', Handler: 'index.handler', Code: { ZipFile: nodeZip('x') } })), (e: Error) => e.name === 'ResourceConflictException');
  await assert.rejects(lambda.send(new CreateFunctionCommand({ FunctionName: 'py', Runtime: 'python3.12', Role: 'r', Handler: 'a.b', Code: { ZipFile: nodeZip('x') } })), (e: Error) => e.name === 'InvalidParameterValueException' && /^Runtime /.test(e.message));
  await assert.rejects(lambda.send(new CreateFunctionCommand({ FunctionName: 'big', Runtime: 'nodejs20.x', Role: 'r', Handler: 'index.handler', MemorySize: 64, Code: { ZipFile: nodeZip('x') } })), (e: Error) => e.name === 'InvalidParameterValueException' && /^MemorySize /.test(e.message));
  await assert.rejects(lambda.send(new CreateFunctionCommand({ FunctionName: 'junk', Runtime: 'nodejs20.x', Role: 'r', Handler: 'index.handler', Code: { ZipFile: Buffer.from('not a zip at all') } })), (e: Error) => e.name === 'InvalidParameterValueException' && /Code.ZipFile/.test(e.message));
  await assert.rejects(lambda.send(new DeleteFunctionCommand({ FunctionName: 'hello' })), (e: Error) => e.name === 'ResourceConflictException' && /proxy.ini/.test(e.message));

  // UpdateFunctionCode while 4 callers invoke in a loop: every call succeeds, on the old code or the new.
  let running = true;
  const seen = new Set<string>();
  const failures: string[] = [];
  const callers = Array.from({ length: 4 }, async () => {
    while (running) {
      try {
        const r = await lambda.send(new InvokeCommand({ FunctionName: 'made-node', Payload: Buffer.from('{}') }));
        if (r.FunctionError) failures.push(text(r.Payload));
        else seen.add(json(r.Payload).version);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  });
  await new Promise((r) => setTimeout(r, 300));
  const updated = await lambda.send(new UpdateFunctionCodeCommand({ FunctionName: 'made-node', ZipFile: nodeZip('two') }));
  assert.notEqual(updated.CodeSha256, got.Configuration?.CodeSha256);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const r = await lambda.send(new InvokeCommand({ FunctionName: 'made-node', Payload: Buffer.from('{}') }));
    if (json(r.Payload).version === 'two') break;
  }
  await new Promise((r) => setTimeout(r, 300));
  running = false;
  await Promise.all(callers);
  assert.deepEqual(failures, []);
  assert.deepEqual([...seen].sort(), ['one', 'two']);

  // Delete: gone at once.
  await lambda.send(new DeleteFunctionCommand({ FunctionName: 'made-bash' }));
  await assert.rejects(lambda.send(new InvokeCommand({ FunctionName: 'made-bash', Payload: Buffer.from('{}') })), (e: Error) => e.name === 'ResourceNotFoundException');

  // Restart: the created function that remains is served again, with its latest code.
  await server.stop();
  server = await startFlexilib({ config, workers: 1, accessLog: false });
  lambda = client();
  assert.deepEqual(json((await lambda.send(new InvokeCommand({ FunctionName: 'made-node', Payload: Buffer.from('{"n":2}') }))).Payload), { version: 'two', got: { n: 2 } });
  assert.deepEqual((await lambda.send(new ListFunctionsCommand({}))).Functions?.map((f) => f.FunctionName).sort(), ['hello', 'made-node', 'misc', 'stream']);
});
