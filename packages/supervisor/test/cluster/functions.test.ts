/**
 * Functions created through the Lambda API are shared state: against a real
 * 3-member etcd cluster and two real flexilib hosts, driven by the real AWS
 * SDK, a CreateFunction on A is invoked on B with the same code sha256, an
 * UpdateFunctionCode on B is served by A, a name that exists answers
 * ResourceConflictException on either host, and a DeleteFunction on A makes B
 * answer ResourceNotFoundException. With all of etcd stopped, invocations go
 * on and every mutation answers 503 in AWS's shape, with Retry-After.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetFunctionCommand,
  InvokeCommand,
  LambdaClient,
  ResourceConflictException,
  ResourceNotFoundException,
  UpdateFunctionCodeCommand,
} from '@aws-sdk/client-lambda';
import { zipSync } from 'fflate';
import { until } from '@flexilib/test-support';
import { startOrigin } from '../upstream/origins.js';
import { EtcdCluster } from './etcd-cluster.js';
import { converged, startHost, type Host } from './hosts.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = new EtcdCluster(3);
  await etcd.start();
});
after(() => etcd?.destroy());

const nodeZip = (version: string) => zipSync({ 'index.mjs': Buffer.from(`export const handler = async (event) => ({ version: ${JSON.stringify(version)}, got: event });\n`) });
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('base64');
const lambdaOf = (h: Host) =>
  new LambdaClient({ endpoint: `http://127.0.0.1:${h.fx.adminPort}`, region: 'eu-west-3', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' }, maxAttempts: 1 });

async function invoke(client: LambdaClient, payload: object): Promise<any> {
  const r = await client.send(new InvokeCommand({ FunctionName: 'shared', Payload: Buffer.from(JSON.stringify(payload)) }));
  assert.equal(r.StatusCode, 200);
  assert.equal(r.FunctionError, undefined, Buffer.from(r.Payload ?? []).toString());
  return JSON.parse(Buffer.from(r.Payload!).toString('utf8'));
}

test('Lambda API functions: create on A runs on B, update on B runs on A, delete on A is gone on B', { timeout: 180_000 }, async (t) => {
  const origin = await startOrigin(t, 'o');
  const A = await startHost(t, etcd, 'fn', 'A', [origin.url]);
  const B = await startHost(t, etcd, 'fn', 'B', [origin.url]);
  await converged([A, B]);
  const a = lambdaOf(A);
  const b = lambdaOf(B);
  t.after(() => (a.destroy(), b.destroy()));

  const v1 = nodeZip('v1');
  const created = await a.send(new CreateFunctionCommand({ FunctionName: 'shared', Runtime: 'nodejs20.x', Handler: 'index.handler', Role: 'arn:aws:iam::123456789012:role/x', Code: { ZipFile: v1 } }));
  assert.equal(created.CodeSha256, sha(v1));
  await until('B to serve the function created on A', async () => (await b.send(new GetFunctionCommand({ FunctionName: 'shared' })).catch(() => undefined)) !== undefined, 10_000).catch((err: Error) => {
    throw new Error(`${err.message}: B logged ${B.fx.output().slice(-3000)}`);
  });
  assert.equal((await b.send(new GetFunctionCommand({ FunctionName: 'shared' }))).Configuration?.CodeSha256, sha(v1), 'B serves the same code');
  assert.deepEqual(await invoke(b, { n: 1 }), { version: 'v1', got: { n: 1 } });

  // The name exists in the cluster: Create answers 409 on either host.
  for (const c of [a, b]) {
    await assert.rejects(c.send(new CreateFunctionCommand({ FunctionName: 'shared', Runtime: 'nodejs20.x', Handler: 'index.handler', Role: 'r', Code: { ZipFile: nodeZip('dup') } })), (err: Error) => {
      assert.ok(err instanceof ResourceConflictException, `${err.name}: ${err.message}`);
      assert.equal((err as ResourceConflictException).$metadata.httpStatusCode, 409);
      return true;
    });
  }

  const v2 = nodeZip('v2');
  const updated = await b.send(new UpdateFunctionCodeCommand({ FunctionName: 'shared', ZipFile: v2 }));
  assert.equal(updated.CodeSha256, sha(v2));
  await until('A to serve the code updated on B', async () => (await invoke(a, { n: 2 })).version === 'v2', 10_000);
  assert.equal((await a.send(new GetFunctionCommand({ FunctionName: 'shared' }))).Configuration?.CodeSha256, sha(v2));
  assert.deepEqual(await invoke(a, { n: 3 }), { version: 'v2', got: { n: 3 } });

  await a.send(new DeleteFunctionCommand({ FunctionName: 'shared' }));
  await until('B to drop the function deleted on A', async () => {
    try {
      await b.send(new InvokeCommand({ FunctionName: 'shared', Payload: Buffer.from('{}') }));
      return false;
    } catch (err) {
      assert.ok(err instanceof ResourceNotFoundException, `${(err as Error).name}: ${(err as Error).message}`);
      assert.equal(err.$metadata.httpStatusCode, 404);
      return true;
    }
  }, 10_000);
  await assert.rejects(b.send(new DeleteFunctionCommand({ FunctionName: 'shared' })), ResourceNotFoundException);
  await converged([A, B]);

  // etcd gone: a function created before keeps serving; Create, Update and Delete answer 503 (ServiceException, Retry-After).
  await a.send(new CreateFunctionCommand({ FunctionName: 'kept', Runtime: 'nodejs20.x', Handler: 'index.handler', Role: 'r', Code: { ZipFile: v1 } }));
  await until('B to serve "kept"', async () => (await b.send(new GetFunctionCommand({ FunctionName: 'kept' })).catch(() => undefined)) !== undefined, 10_000);
  await etcd.stopAll();
  await until('B to notice etcd is gone', async () => (await B.get('/cluster')).status === 'unreachable', 15_000);
  const kept = await b.send(new InvokeCommand({ FunctionName: 'kept', Payload: Buffer.from('{"n":4}') }));
  assert.deepEqual(JSON.parse(Buffer.from(kept.Payload!).toString('utf8')), { version: 'v1', got: { n: 4 } });
  const refusals = [
    () => b.send(new CreateFunctionCommand({ FunctionName: 'late', Runtime: 'nodejs20.x', Handler: 'index.handler', Role: 'r', Code: { ZipFile: v2 } })),
    () => b.send(new UpdateFunctionCodeCommand({ FunctionName: 'kept', ZipFile: v2 })),
    () => b.send(new DeleteFunctionCommand({ FunctionName: 'kept' })),
  ];
  for (const call of refusals) {
    await assert.rejects(call(), (err: any) => {
      assert.equal(err.name, 'ServiceException', err.message);
      assert.equal(err.$metadata.httpStatusCode, 503);
      assert.equal(err.$response?.headers?.['retry-after'], '5');
      assert.match(err.message, /etcd is unreachable/);
      return true;
    });
  }
});
