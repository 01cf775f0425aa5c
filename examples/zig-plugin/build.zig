//! Builds zig-out/lib/libflexi_example_zig.so with Zig 0.11:
//!   zig build -Doptimize=ReleaseFast
//! The flexilib binding is a module over flexilib.h, so the header folder is
//! on the include path, and libc is linked because the arena helpers take
//! overflow memory from malloc (the host frees it with free).
const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});
    const abi = "../../packages/plugin-abi";

    const flexilib = b.createModule(.{ .source_file = .{ .path = abi ++ "/zig/flexilib.zig" } });

    const lib = b.addSharedLibrary(.{
        .name = "flexi_example_zig",
        .root_source_file = .{ .path = "src/plugin.zig" },
        .target = target,
        .optimize = optimize,
    });
    lib.addModule("flexilib", flexilib);
    lib.addIncludePath(.{ .path = abi ++ "/include" });
    lib.linkLibC();
    b.installArtifact(lib);
}
