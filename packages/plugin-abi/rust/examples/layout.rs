//! Prints the size and every field offset of the #[repr(C)] mirrors, one
//! `STRUCT FIELD OFFSET` line each (FIELD `sizeof` for the size), for the
//! layout test in packages/plugin-abi/test to compare with the C compiler.
use flexilib::sys::*;
use std::mem::{offset_of, size_of};

macro_rules! dump {
    ($t:ident { $($f:ident),* $(,)? }) => {
        println!("{} sizeof {}", stringify!($t), size_of::<$t>());
        $( println!("{} {} {}", stringify!($t), stringify!($f), offset_of!($t, $f)); )*
    };
}

fn main() {
    dump!(flexi_header { name, name_len, value, value_len });
    dump!(flexi_request {
        method, method_len, target, target_len, headers, headers_len, body, body_len,
        remote_addr, remote_addr_len, remote_port, http_major, http_minor, host_abi_version,
    });
    dump!(flexi_resp_header { next, name, name_len, value, value_len });
    dump!(flexi_heap_block { next, size });
    dump!(flexi_response {
        status, flags, reason, reason_len, headers, headers_tail, headers_len, body, body_len,
        body_cap, arena, arena_size, arena_top, heap, heap_bytes,
    });
}
