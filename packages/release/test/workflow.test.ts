/**
 * .gitea/workflows/build.yaml, parsed as YAML: the test job runs exactly the
 * README's test command (read from README.md, not written here), then builds
 * the release tarball and uploads it; tags build and push the image.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { readmeTestCommand } from './helpers/readme-command.js';
import { at } from './helpers/repo.js';

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  'runs-on'?: string;
  if?: string;
  needs?: string | string[];
  steps: Step[];
}
interface Workflow {
  on: Record<string, { branches?: string[]; tags?: string[] } | null>;
  jobs: Record<string, Job>;
}

const workflow = parse(readFileSync(at('.gitea', 'workflows', 'build.yaml'), 'utf8')) as Workflow;
const runLines = (job: Job): string[] => job.steps.flatMap((s) => (s.run ?? '').split('\n').map((l) => l.trim()).filter(Boolean));
const stepIndex = (job: Job, pred: (s: Step) => boolean): number => job.steps.findIndex(pred);

function readmeCommand(): string {
  assert.ok(existsSync(at('README.md')), 'README.md is missing: the workflow must run the test command the README gives');
  const cmd = readmeTestCommand(readFileSync(at('README.md'), 'utf8'));
  assert.ok(cmd, 'README.md has no code block with a test command (pnpm test, npm test, pnpm run test ...)');
  return cmd;
}

describe('readmeTestCommand', () => {
  test('takes the first test command inside a code block, without prompt or comment', () => {
    const md = ['Run `pnpm test` to test.', '', '```sh', 'pnpm install', '$ pnpm test   # build and run every test', 'pnpm test -- x', '```'].join('\n');
    assert.equal(readmeTestCommand(md), 'pnpm test');
    assert.equal(readmeTestCommand('```\nnpm run test --silent\n```\n'), 'npm run test --silent');
    assert.equal(readmeTestCommand('pnpm test\n\n```\npnpm start\n```\n'), undefined);
    assert.equal(readmeTestCommand('```\npnpm testify\n```\n'), undefined);
  });
});

describe('.gitea/workflows/build.yaml', () => {
  test('runs on pushes, pull requests and v* tags', () => {
    assert.ok('push' in workflow.on && 'pull_request' in workflow.on, `on: ${Object.keys(workflow.on).join(', ')}`);
    assert.ok(workflow.on.push?.tags?.some((t) => t.startsWith('v')), 'no tag trigger');
  });

  test("exactly one job runs the README's test command, after a frozen-lockfile install on Node 20", () => {
    const cmd = readmeCommand();
    const jobs = Object.entries(workflow.jobs).filter(([, j]) => runLines(j).includes(cmd));
    assert.equal(jobs.length, 1, `jobs running "${cmd}": ${jobs.map(([n]) => n).join(', ') || 'none'}`);
    const [, job] = jobs[0];
    assert.equal(job.if, undefined, 'the test job must run on every push and pull request');
    const node = job.steps.find((s) => s.uses?.startsWith('actions/setup-node@'));
    assert.equal(String(node?.with?.['node-version']), '20');
    assert.ok(job.steps.some((s) => s.uses?.startsWith('pnpm/action-setup@')) || runLines(job).some((l) => /install -g pnpm|corepack enable/.test(l)), 'pnpm is not installed');
    const install = stepIndex(job, (s) => s.run?.trim() === 'pnpm install --frozen-lockfile');
    const tests = stepIndex(job, (s) => (s.run ?? '').split('\n').map((l) => l.trim()).includes(cmd));
    assert.ok(install >= 0 && install < tests, 'pnpm install --frozen-lockfile must come before the tests');
  });

  test('the same job builds the release tarball after the tests and uploads it', () => {
    const cmd = readmeCommand();
    const job = Object.values(workflow.jobs).find((j) => runLines(j).includes(cmd))!;
    const tests = stepIndex(job, (s) => (s.run ?? '').includes(cmd));
    const release = stepIndex(job, (s) => s.run?.trim() === 'pnpm run release');
    assert.ok(release > tests, 'pnpm run release must follow the tests');
    const upload = job.steps.findIndex((s) => s.uses?.startsWith('actions/upload-artifact@'));
    assert.ok(upload > release, 'no artifact upload after the release');
    assert.equal(job.steps[upload].with?.path, 'dist/flexilib-*.tar.gz');
  });

  test('.ci/run runs the same README test command', () => {
    const cmd = readmeCommand();
    const lines = readFileSync(at('.ci', 'run'), 'utf8').split('\n').map((l) => l.trim());
    assert.ok(lines.includes(cmd), `.ci/run does not run "${cmd}"`);
  });

  test('on tags only, after the tests, builds docker/Dockerfile and pushes the image', () => {
    const cmd = readmeCommand();
    const testJob = Object.entries(workflow.jobs).find(([, j]) => runLines(j).includes(cmd))![0];
    const images = Object.values(workflow.jobs).filter((j) => j.steps.some((s) => s.uses?.startsWith('docker/build-push-action@')));
    assert.equal(images.length, 1);
    const [image] = images;
    assert.match(image.if ?? '', /startsWith\(github\.ref, 'refs\/tags\/'\)/);
    assert.deepEqual([image.needs].flat(), [testJob]);
    const push = image.steps.find((s) => s.uses?.startsWith('docker/build-push-action@'))!;
    assert.equal(push.with?.file, 'docker/Dockerfile');
    assert.equal(push.with?.context, '.');
    assert.equal(push.with?.push, true);
    const login = image.steps.find((s) => s.uses?.startsWith('docker/login-action@'));
    assert.match(String(login?.with?.password), /secrets\./, 'registry password must come from a secret');
  });
});
