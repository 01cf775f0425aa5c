//! Prints the size and every field offset of the structs the Zig binding uses
//! (`STRUCT FIELD OFFSET` lines, FIELD `sizeof` for the size), for the layout
//! test in packages/plugin-abi/test. Run: zig run layout.zig -I ../include -lc
const std = @import("std");
const c = @import("flexilib.zig").c;

fn dump(out: anytype, comptime name: []const u8, comptime T: type) !void {
    try out.print("{s} sizeof {d}\n", .{ name, @sizeOf(T) });
    inline for (std.meta.fields(T)) |f| try out.print("{s} {s} {d}\n", .{ name, f.name, @offsetOf(T, f.name) });
}

pub fn main() !void {
    const out = std.io.getStdOut().writer();
    try dump(out, "flexi_header", c.flexi_header);
    try dump(out, "flexi_request", c.flexi_request);
    try dump(out, "flexi_resp_header", c.flexi_resp_header);
    try dump(out, "flexi_heap_block", c.flexi_heap_block);
    try dump(out, "flexi_response", c.flexi_response);
}
