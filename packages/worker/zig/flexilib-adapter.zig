//! The host side of FlexiLib's plugin interface, built into
//! dist/native/flexilib-adapter.so with the Zig 0.11 of the npm devDependency
//! (scripts/build-flexilib-adapter.mjs). The worker calls `flexilib_adapter_call`
//! in place of a v1 plugin's handle_request, with the same request and response
//! structs (flexilib.h), so the executor, call slots, fast lane, `flexilib invoke`
//! and arena statistics serve a FlexiLib library unchanged. One call:
//!
//!   v1 request ──> FlexiLib Request (on this stack; headers shared: same layout)
//!   zigInit(&allocator)          a Zig 0.11 std.mem.Allocator: this thread's arena
//!   handle_request(&Request)     ?*Response, null = failed
//!   Response ──copy──> v1 response (flexilib.h helpers: arena, else malloc the host frees)
//!   request_deinit()
//!   arena reset                  everything the plugin allocated is freed
//!
//! zigInit and handle_request run in the one native call, on one thread:
//! FlexiLib's interface keeps the allocator in a threadlocal, and threaded
//! routes call from koffi's pool threads.
const std = @import("std");

const c = @cImport({
    @cDefine("FLEXI_NO_VERSION_EXPORT", "1");
    @cInclude("flexilib.h");
});

/// FlexiLib's structs (src/interface.zig, Zig 0.11 era), in order.
const Header = extern struct {
    name_ptr: [*]const u8,
    name_len: usize,
    value_ptr: [*]const u8,
    value_len: usize,
};

const Request = extern struct {
    target: [*]const u8,
    target_len: usize,
    method: [*:0]const u8,
    method_len: usize,
    content: [*]const u8,
    content_len: usize,
    headers: [*]const Header,
    headers_len: usize,
};

const Response = extern struct {
    ptr: ?[*]const u8,
    len: usize,
    headers: ?[*]const Header,
    headers_len: usize,
    status: usize,
    reason_ptr: ?[*]const u8,
    reason_len: usize,
};

/// The library's exports, filled in by the host once per loaded version.
const Plugin = extern struct {
    handle_request: *const fn (*Request) callconv(.C) ?*Response,
    zig_init: ?*const fn (*anyopaque) callconv(.C) void,
    request_deinit: ?*const fn () callconv(.C) void,
};

comptime {
    // flexi_header and FlexiLib's Header are the same four words, so the request
    // headers are handed over as they are.
    std.debug.assert(@sizeOf(Header) == @sizeOf(c.flexi_header));
    std.debug.assert(@offsetOf(Header, "value_len") == @offsetOf(c.flexi_header, "value_len"));
}

/// Memory the arena takes its blocks from: a pre-allocated buffer of the
/// route's RESPONSE_PREALLOCATION_KB first (kept for the thread's next call, as
/// FlexiLib keeps its per-thread pre-allocation), then malloc, counted so the
/// access line reports it as `alloc`.
const Backing = struct {
    buf: []u8 = &[_]u8{},
    top: usize = 0,
    overflow: usize = 0,

    fn allocator(self: *Backing) std.mem.Allocator {
        return .{ .ptr = self, .vtable = &.{ .alloc = alloc, .resize = resize, .free = free } };
    }

    fn inBuf(self: *Backing, p: [*]u8) bool {
        const a = @intFromPtr(p);
        const b = @intFromPtr(self.buf.ptr);
        return a >= b and a < b + self.buf.len;
    }

    fn alloc(ctx: *anyopaque, len: usize, ptr_align: u8, ret: usize) ?[*]u8 {
        const self: *Backing = @ptrCast(@alignCast(ctx));
        const base = @intFromPtr(self.buf.ptr);
        const start = std.mem.alignForward(usize, base + self.top, @as(usize, 1) << @intCast(ptr_align)) - base;
        if (start + len <= self.buf.len) {
            self.top = start + len;
            return self.buf.ptr + start;
        }
        const p = std.heap.c_allocator.rawAlloc(len, ptr_align, ret) orelse return null;
        self.overflow += len;
        return p;
    }

    fn resize(ctx: *anyopaque, buf: []u8, buf_align: u8, new_len: usize, ret: usize) bool {
        const self: *Backing = @ptrCast(@alignCast(ctx));
        if (self.inBuf(buf.ptr)) {
            // Only the newest block grows or shrinks in place.
            const start = @intFromPtr(buf.ptr) - @intFromPtr(self.buf.ptr);
            if (start + buf.len != self.top or start + new_len > self.buf.len) return new_len <= buf.len;
            self.top = start + new_len;
            return true;
        }
        if (!std.heap.c_allocator.rawResize(buf, buf_align, new_len, ret)) return false;
        if (new_len > buf.len) self.overflow += new_len - buf.len;
        return true;
    }

    fn free(ctx: *anyopaque, buf: []u8, buf_align: u8, ret: usize) void {
        const self: *Backing = @ptrCast(@alignCast(ctx));
        if (self.inBuf(buf.ptr)) return; // the whole buffer is reused after the call
        std.heap.c_allocator.rawFree(buf, buf_align, ret);
    }
};

/// One per thread that calls plugins (the event loop, each koffi pool thread):
/// each call in flight has its own arena.
const ThreadArena = struct {
    backing: Backing = .{},
    arena: std.heap.ArenaAllocator = undefined,
    /// What zigInit receives: a pointer to a std.mem.Allocator that stays valid for the call.
    allocator: std.mem.Allocator = undefined,
};

threadlocal var tls: ThreadArena = .{};
threadlocal var ready: bool = false;

fn threadArena(prealloc: usize) *ThreadArena {
    const t = &tls;
    if (!ready) {
        if (prealloc > 0) {
            if (std.heap.c_allocator.alloc(u8, prealloc)) |b| t.backing.buf = b else |_| {}
        }
        t.arena = std.heap.ArenaAllocator.init(t.backing.allocator());
        t.allocator = t.arena.allocator();
        ready = true;
    }
    return t;
}

/// Free everything of the call: malloc'd blocks go back to libc, the
/// pre-allocated buffer is kept for the next call.
fn resetArena(t: *ThreadArena) void {
    _ = t.arena.reset(.free_all);
    t.backing.top = 0;
    t.backing.overflow = 0;
}

var empty = [_:0]u8{};

/// Called by the host in place of handle_request. Returns 0 when the plugin
/// answered, 1 for a null Response (the host answers 500), 2 when the answer
/// could not be copied (out of memory).
export fn flexilib_adapter_call(plugin: *const Plugin, req: *const c.flexi_request, resp: *c.flexi_response) callconv(.C) c_int {
    const t = threadArena(resp.arena_size);
    defer resetArena(t);

    // FlexiLib's method is NUL-terminated; flexilib's is not.
    var method_buf: [64:0]u8 = undefined;
    var method: [*:0]const u8 = &empty;
    if (req.method_len > 0) {
        if (req.method_len < method_buf.len) {
            @memcpy(method_buf[0..req.method_len], req.method[0..req.method_len]);
            method_buf[req.method_len] = 0;
            method = &method_buf;
        } else {
            const m = t.allocator.allocSentinel(u8, req.method_len, 0) catch return 2;
            @memcpy(m[0..req.method_len], req.method[0..req.method_len]);
            method = m.ptr;
        }
    }
    var request = Request{
        .target = if (req.target_len > 0) @ptrCast(req.target) else &empty,
        .target_len = req.target_len,
        .method = method,
        .method_len = req.method_len,
        .content = if (req.body_len > 0) @ptrCast(req.body) else &empty,
        .content_len = req.body_len,
        .headers = @ptrCast(req.headers), // the slot always points it at its header array
        .headers_len = req.headers_len,
    };

    if (plugin.zig_init) |init| init(@ptrCast(&t.allocator));
    const answer = plugin.handle_request(&request);
    const rc = if (answer) |r| copyAnswer(r, resp) else 1;
    if (plugin.request_deinit) |deinit| deinit();
    resp.heap_bytes += t.backing.overflow;
    return rc;
}

/// Copy the plugin's answer into the v1 response: the body and headers into
/// the slot's arena (or malloc'd blocks the host frees), the status as is.
fn copyAnswer(r: *const Response, resp: *c.flexi_response) c_int {
    if (r.len > 0) {
        const body = r.ptr orelse return 2;
        if (c.flexi_write(resp, body, r.len) != 0) return 2;
    }
    if (r.headers_len > 0) {
        const hs = r.headers orelse return 2;
        for (hs[0..r.headers_len]) |h| {
            if (c.flexi_add_header_n(resp, @ptrCast(h.name_ptr), h.name_len, @ptrCast(h.value_ptr), h.value_len) != 0) return 2;
        }
    }
    if (r.reason_len > 0) {
        if (r.reason_ptr) |p| {
            if (c.flexi_set_reason(resp, @ptrCast(p), r.reason_len) != 0) return 2;
        }
    }
    // A status beyond int32 stays out of range, so the host's status rules refuse it.
    resp.status = if (r.status > std.math.maxInt(i32)) std.math.maxInt(i32) else @intCast(r.status);
    return 0;
}
