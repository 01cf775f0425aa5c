//! flexilib.zig — the flexilib plugin ABI for Zig (0.11).
//!
//! A thin layer over flexilib.h, the one source of truth: the structs and the
//! arena helpers come from `@cImport` of the header, and this file only wraps
//! them in slices, error unions and a comptime `exportPlugin`. Memory rules are
//! the header's (see docs/plugins.md): everything a Response hands out lives
//! until the host has sent the response; the Request is valid during the call.
//!
//!     const flexi = @import("flexilib");
//!     comptime { flexi.exportPlugin(@This()); }
//!     pub fn handle(req: flexi.Request, resp: flexi.Response) !void {
//!         try resp.print("hello {s}", .{req.target()});
//!     }
//!
//! Build: add this file as a module and the header folder as an include path,
//! and link libc (the helpers take overflow memory from malloc; the host frees
//! it with free). See examples/zig-plugin/build.zig.
const std = @import("std");

/// The raw C declarations of flexilib.h. The header's own `flexi_abi_version`
/// definition is switched off here: `exportPlugin` exports it explicitly, since
/// Zig analyses (and so exports) only what is referenced.
pub const c = @cImport({
    @cDefine("FLEXI_NO_VERSION_EXPORT", "1");
    @cInclude("flexilib.h");
});

pub const abi_version_major: u32 = c.FLEXI_ABI_VERSION_MAJOR;
pub const abi_version_minor: u32 = c.FLEXI_ABI_VERSION_MINOR;
/// (major << 16) | minor, the value the host reads from `flexi_abi_version`.
pub const abi_version: u32 = (abi_version_major << 16) | abi_version_minor;

/// Exported as `flexi_abi_version` by `exportPlugin`.
const flexi_abi_version: u32 = abi_version;

/// The only way a helper fails: malloc returned NULL.
pub const Error = error{OutOfMemory};

/// One request header, bytes as received.
pub const Header = struct { name: []const u8, value: []const u8 };

fn bytes(ptr: [*c]const u8, len: usize) []const u8 {
    if (len == 0) return &[_]u8{};
    return ptr[0..len];
}

/// The request: read-only, valid only during the handler call.
pub const Request = struct {
    raw: *const c.flexi_request,

    pub fn method(self: Request) []const u8 {
        return bytes(self.raw.method, self.raw.method_len);
    }
    /// Path and query, as received.
    pub fn target(self: Request) []const u8 {
        return bytes(self.raw.target, self.raw.target_len);
    }
    pub fn body(self: Request) []const u8 {
        return bytes(self.raw.body, self.raw.body_len);
    }
    /// The peer's IP address as text.
    pub fn remoteAddr(self: Request) []const u8 {
        return bytes(self.raw.remote_addr, self.raw.remote_addr_len);
    }
    pub fn remotePort(self: Request) u16 {
        return self.raw.remote_port;
    }
    pub fn headerCount(self: Request) usize {
        return self.raw.headers_len;
    }
    /// The i-th header in received order (names as sent).
    pub fn headerAt(self: Request, i: usize) Header {
        const h = self.raw.headers[i];
        return .{ .name = bytes(h.name, h.name_len), .value = bytes(h.value, h.value_len) };
    }
    /// The first header named `name` (case-insensitive), or null.
    pub fn header(self: Request, name: [:0]const u8) ?[]const u8 {
        var len: usize = 0;
        const v = c.flexi_request_header(self.raw, name.ptr, &len);
        if (v == null) return null;
        return bytes(v, len);
    }
};

/// The response under construction. Its methods call the header's helpers, so
/// everything lands in the per-thread arena (or malloc'd overflow the host frees).
pub const Response = struct {
    raw: *c.flexi_response,

    /// Append to the body.
    pub fn write(self: Response, data: []const u8) Error!void {
        if (c.flexi_write(self.raw, data.ptr, data.len) != 0) return error.OutOfMemory;
    }
    /// Append formatted text to the body.
    pub fn print(self: Response, comptime fmt: []const u8, args: anytype) Error!void {
        return std.fmt.format(self.writer(), fmt, args);
    }
    /// A std.io.Writer appending to the body.
    pub fn writer(self: Response) Writer {
        return .{ .context = self };
    }
    pub const Writer = std.io.Writer(Response, Error, writeFn);
    fn writeFn(self: Response, data: []const u8) Error!usize {
        try self.write(data);
        return data.len;
    }
    /// Add a response header (both strings are copied into the arena).
    pub fn addHeader(self: Response, name: []const u8, value: []const u8) Error!void {
        if (c.flexi_add_header_n(self.raw, name.ptr, name.len, value.ptr, value.len) != 0) return error.OutOfMemory;
    }
    /// Set the status code (0, the default, means 200).
    pub fn setStatus(self: Response, status: c_int) void {
        c.flexi_set_status(self.raw, status);
    }
    /// Set a custom reason phrase (copied into the arena).
    pub fn setReason(self: Response, reason: []const u8) Error!void {
        if (c.flexi_set_reason(self.raw, reason.ptr, reason.len) != 0) return error.OutOfMemory;
    }
    /// n bytes (16-byte aligned) that live until the response is sent.
    pub fn alloc(self: Response, n: usize) Error![]u8 {
        const p = c.flexi_alloc(self.raw, n) orelse return error.OutOfMemory;
        return @as([*]u8, @ptrCast(p))[0..n];
    }
};

/// Export `Plugin`'s functions under the ABI's names, plus `flexi_abi_version`.
/// `Plugin` must declare `pub fn handle(Request, Response) !void` (an error
/// answers 500 unless a status >= 400 was set; the body written so far is kept)
/// and may declare `pub fn init() !void` (an error fails the load),
/// `pub fn deinit() void` and `pub fn requestDeinit() void`.
pub fn exportPlugin(comptime Plugin: type) void {
    const S = struct {
        fn handle_request(req: *const c.flexi_request, resp: *c.flexi_response) callconv(.C) c_int {
            Plugin.handle(.{ .raw = req }, .{ .raw = resp }) catch return 1;
            return 0;
        }
        fn flexi_init() callconv(.C) c_int {
            Plugin.init() catch return 1;
            return 0;
        }
        fn flexi_deinit() callconv(.C) void {
            Plugin.deinit();
        }
        fn request_deinit() callconv(.C) void {
            Plugin.requestDeinit();
        }
    };
    @export(flexi_abi_version, .{ .name = "flexi_abi_version", .linkage = .Strong });
    @export(S.handle_request, .{ .name = "handle_request", .linkage = .Strong });
    if (@hasDecl(Plugin, "init")) @export(S.flexi_init, .{ .name = "flexi_init", .linkage = .Strong });
    if (@hasDecl(Plugin, "deinit")) @export(S.flexi_deinit, .{ .name = "flexi_deinit", .linkage = .Strong });
    if (@hasDecl(Plugin, "requestDeinit")) @export(S.request_deinit, .{ .name = "request_deinit", .linkage = .Strong });
}
