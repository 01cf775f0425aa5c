//! The FlexiLib sample plugin's behaviour in Zig, over the flexilib Zig binding.
//! The same behaviour as examples/c-plugin/flexi_example.c:
//!
//!   body " N"               N = number of request headers
//!   X-custom-foo: bar       on every answer
//!   x-log-this: V           V is prepended to the body
//!   x-status: N             answers with status N
//!   x-throw                 the handler fails: 500, body so far kept
//!   x-slow: MS              sleeps MS milliseconds, answers "i am slow"
//!   Host: iam...            answers "iam response"
//!   /echo...                answers "METHOD TARGET\n" followed by the request body
const std = @import("std");
const flexi = @import("flexilib");

comptime {
    flexi.exportPlugin(@This());
}

/// Leading decimal digits of `s` (like the C example's parse_long: stops at the first non-digit).
fn parseNumber(s: []const u8) u64 {
    var v: u64 = 0;
    for (s) |ch| {
        if (ch < '0' or ch > '9') break;
        v = v *% 10 +% (ch - '0');
    }
    return v;
}

pub fn handle(req: flexi.Request, resp: flexi.Response) !void {
    try resp.addHeader("X-custom-foo", "bar");

    if (req.header("x-slow")) |ms| {
        std.time.sleep(parseNumber(ms) * std.time.ns_per_ms);
        return resp.write("i am slow");
    }

    if (req.header("host")) |host| {
        if (std.mem.startsWith(u8, host, "iam")) return resp.write("iam response");
    }

    if (std.mem.startsWith(u8, req.target(), "/echo")) {
        return resp.print("{s} {s}\n{s}", .{ req.method(), req.target(), req.body() });
    }

    if (req.header("x-log-this")) |v| try resp.write(v);
    try resp.print(" {d}", .{req.headerCount()});

    if (req.header("x-status")) |v| resp.setStatus(@intCast(parseNumber(v) & 0x7fffffff));

    if (req.header("x-throw") != null) return error.Thrown;
}
