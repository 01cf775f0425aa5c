/**
 * The Zig and Rust bindings beyond what the example uses: a plugin written
 * with every wrapper (header iteration, alloc, reason, an init hook, overflow
 * of the arena, errors and panics) is built with each binding and called
 * through the real `flexilib invoke`. Both must answer byte for byte alike.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { invokeFlexilib } from '../src/conformance/invoke.js';
import { abiRoot, exec, includeDir, requireCargo, repoRoot, zigPath } from './toolchains.js';

const cli = path.join(repoRoot, 'packages/supervisor/dist/cli.js');

const ZIG_PLUGIN = `
const std = @import("std");
const flexi = @import("flexilib");
comptime { flexi.exportPlugin(@This()); }
var initialized: u32 = 0;
pub fn init() !void { initialized = 42; }
pub fn handle(req: flexi.Request, resp: flexi.Response) !void {
    if (req.header("X-FAIL") != null) { resp.setStatus(418); return error.Failed; }
    try resp.addHeader("Content-Type", "application/x-test");
    try resp.setReason("Bound");
    const scratch = try resp.alloc(64);
    try resp.write(try std.fmt.bufPrint(scratch, "init={d}", .{initialized}));
    var i: usize = 0;
    while (i < req.headerCount()) : (i += 1) {
        const h = req.headerAt(i);
        try resp.print(" {s}={s}", .{ h.name, h.value });
    }
    try resp.print(" {s} {s} body={d}\\n", .{ req.method(), req.target(), req.body().len });
    var k: usize = 0;
    while (k < 3) : (k += 1) try resp.write(req.body());
}
`;

const RUST_PLUGIN = `
use flexilib::{Request, Response};
use std::sync::atomic::{AtomicU32, Ordering};
static INITIALIZED: AtomicU32 = AtomicU32::new(0);
fn init() -> bool { INITIALIZED.store(42, Ordering::SeqCst); true }
fn handle(req: &Request, resp: &mut Response) -> Result<(), flexilib::Error> {
    if req.header("x-panic").is_some() { panic!("asked to panic"); }
    if req.header("x-fail").is_some() { resp.set_status(418); return Err(flexilib::Error); }
    resp.add_header("Content-Type", "application/x-test")?;
    resp.set_reason("Bound")?;
    let text = format!("init={}", INITIALIZED.load(Ordering::SeqCst));
    let scratch = resp.alloc(64)?;
    scratch[..text.len()].copy_from_slice(text.as_bytes());
    resp.write(&scratch[..text.len()])?;
    for (name, value) in req.headers() {
        resp.write(b" ")?; resp.write(name)?; resp.write(b"=")?; resp.write(value)?;
    }
    resp.write(b" ")?; resp.write(req.method())?; resp.write(b" ")?; resp.write(req.target())?;
    resp.print(format_args!(" body={}\\n", req.body().len()))?;
    for _ in 0..3 { resp.write(req.body())?; }
    Ok(())
}
flexilib::export_plugin!(handle, init = init);
`;

let dir: string;
let bodyFile: string;
const body = Buffer.alloc(20_000);
for (let i = 0; i < body.length; i++) body[i] = 97 + (i % 26);

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'flexi-bindings-'));
  bodyFile = path.join(dir, 'body.txt');
  await writeFile(bodyFile, body);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const invoke = (lib: string, args: string[]) => invokeFlexilib(cli, [lib, ...args]);

const expectedBody = Buffer.concat([Buffer.from('init=42 A=1 b=two content-length=20000 PATCH /p?q=1 body=20000\n'), body, body, body]);
const expected = Buffer.concat([
  Buffer.from(`HTTP/1.1 200 Bound\nContent-Type: application/x-test\ncontent-length: ${expectedBody.length}\n\n`),
  expectedBody,
]);

async function checkPlugin(lib: string): Promise<void> {
  const ok = await invoke(lib, ['-X', 'PATCH', '--path', '/p?q=1', '-H', 'A: 1', '-H', 'b: two', '--data', `@${bodyFile}`, '--prealloc-kb', '1']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout.subarray(0, 140).toString(), expected.subarray(0, 140).toString());
  assert.ok(ok.stdout.equals(expected), 'the body beyond the arena comes back byte-exact');
  const fail = await invoke(lib, ['-H', 'x-fail: 1']);
  assert.equal(fail.code, 1);
  assert.match(fail.stdout.toString(), /^HTTP\/1\.1 418 /, 'an error keeps the status >= 400 the plugin set');
  assert.match(fail.stderr, /handle_request returned 1/);
}

test('Zig: every wrapper of flexilib.zig, an init hook, errors', async () => {
  const src = path.join(dir, 'bound.zig');
  await writeFile(src, ZIG_PLUGIN);
  const out = path.join(dir, 'libbound_zig.so');
  await exec(zigPath(), ['build-lib', '-dynamic', '-OReleaseFast', `-femit-bin=${out}`, '--mod', `flexilib::${path.join(abiRoot, 'zig/flexilib.zig')}`, '--deps', 'flexilib', src, '-I', includeDir, '-lc'], { cwd: dir, timeout: 240_000 });
  const { stdout: syms } = await exec('nm', ['-D', '--defined-only', out]);
  for (const s of ['handle_request', 'flexi_abi_version', 'flexi_init']) assert.match(syms, new RegExp(`\\b${s}\\b`));
  assert.doesNotMatch(syms, /\bflexi_deinit\b|\brequest_deinit\b/, 'only the hooks the plugin declares are exported');
  await checkPlugin(out);
});

test('Rust: every wrapper of the flexilib crate, an init hook, errors and panics', async () => {
  requireCargo();
  const crate = path.join(dir, 'bound-rs');
  await mkdir(path.join(crate, 'src'), { recursive: true });
  await writeFile(path.join(crate, 'Cargo.toml'), `[package]\nname = "bound_rs"\nversion = "0.1.0"\nedition = "2021"\n[lib]\ncrate-type = ["cdylib"]\n[dependencies]\nflexilib = { path = ${JSON.stringify(path.join(abiRoot, 'rust'))} }\n`);
  await writeFile(path.join(crate, 'src/lib.rs'), RUST_PLUGIN);
  await exec('cargo', ['build', '--release', '--offline', '-q'], { cwd: crate, timeout: 240_000 });
  const lib = path.join(crate, 'target/release/libbound_rs.so');
  await checkPlugin(lib);
  const panic = await invoke(lib, ['-H', 'x-panic: 1']);
  assert.equal(panic.code, 1, 'a panic answers 500 instead of unwinding into the host');
  assert.match(panic.stdout.toString(), /^HTTP\/1\.1 500 Internal Server Error\n/);
  assert.match(panic.stderr, /asked to panic/);
});
