//! flexilib — the flexilib plugin ABI (v1) for Rust.
//!
//! [`sys`] mirrors the structs of `flexilib.h` with `#[repr(C)]`; a layout
//! test in packages/plugin-abi checks every offset and size against the C
//! compiler. The header-only helpers of flexilib.h are reimplemented here with
//! the same arena rules, taking overflow memory from libc's `malloc`/`realloc`
//! because the host releases it with libc's `free`.
//!
//! ```ignore
//! use flexilib::{Request, Response};
//!
//! fn handle(req: &Request, resp: &mut Response) -> Result<(), flexilib::Error> {
//!     resp.add_header("Content-Type", "text/plain")?;
//!     resp.write(req.target())
//! }
//! flexilib::export_plugin!(handle);
//! ```
//!
//! Lifetimes: a [`Request`] and everything borrowed from it are valid during
//! the call only; what a [`Response`] allocates lives until the host has sent
//! the response. Never keep either across calls (see docs/plugins.md).
#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::c_void;
use std::fmt;

pub const ABI_VERSION_MAJOR: u32 = 1;
pub const ABI_VERSION_MINOR: u32 = 0;
/// `(major << 16) | minor`, exported as `flexi_abi_version` by [`export_plugin!`].
pub const ABI_VERSION: u32 = (ABI_VERSION_MAJOR << 16) | ABI_VERSION_MINOR;

/// The C structs of flexilib.h, field for field.
#[allow(non_camel_case_types)]
pub mod sys {
    use std::ffi::c_char;

    /// One request header: bytes as received, not NUL-terminated.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct flexi_header {
        pub name: *const c_char,
        pub name_len: usize,
        pub value: *const c_char,
        pub value_len: usize,
    }

    /// The request: read-only, valid during `handle_request` only.
    #[repr(C)]
    #[derive(Debug)]
    pub struct flexi_request {
        pub method: *const c_char,
        pub method_len: usize,
        pub target: *const c_char,
        pub target_len: usize,
        pub headers: *const flexi_header,
        pub headers_len: usize,
        pub body: *const u8,
        pub body_len: usize,
        pub remote_addr: *const c_char,
        pub remote_addr_len: usize,
        pub remote_port: u16,
        pub http_major: u8,
        pub http_minor: u8,
        pub host_abi_version: u32,
    }

    /// A response header node, in the arena.
    #[repr(C)]
    #[derive(Debug)]
    pub struct flexi_resp_header {
        pub next: *mut flexi_resp_header,
        pub name: *const c_char,
        pub name_len: usize,
        pub value: *const c_char,
        pub value_len: usize,
    }

    /// A malloc'd overflow block; the host frees the chain after the response.
    #[repr(C)]
    #[derive(Debug)]
    pub struct flexi_heap_block {
        pub next: *mut flexi_heap_block,
        pub size: usize,
    }

    /// The response; set by the host before every call.
    #[repr(C)]
    #[derive(Debug)]
    pub struct flexi_response {
        pub status: i32,
        pub flags: u32,
        pub reason: *const c_char,
        pub reason_len: usize,
        pub headers: *mut flexi_resp_header,
        pub headers_tail: *mut flexi_resp_header,
        pub headers_len: usize,
        pub body: *mut u8,
        pub body_len: usize,
        pub body_cap: usize,
        pub arena: *mut u8,
        pub arena_size: usize,
        pub arena_top: usize,
        pub heap: *mut flexi_heap_block,
        pub heap_bytes: usize,
    }
}

use sys::*;

extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
}

/// The only way a helper fails: malloc returned NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("flexilib: out of memory")
    }
}
impl std::error::Error for Error {}

const ALIGN: usize = 16;
const fn align_up(n: usize) -> usize {
    (n + ALIGN - 1) & !(ALIGN - 1)
}

unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 || ptr.is_null() {
        &[]
    } else {
        // SAFETY: the host guarantees ptr..ptr+len is readable during the call.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// The request, borrowed for the duration of the call.
pub struct Request<'a> {
    raw: &'a flexi_request,
}

impl<'a> Request<'a> {
    /// # Safety
    /// `raw` must point to a valid request (as handed to `handle_request`).
    pub unsafe fn from_raw(raw: *const flexi_request) -> Self {
        Request { raw: unsafe { &*raw } }
    }
    pub fn raw(&self) -> &'a flexi_request {
        self.raw
    }
    pub fn method(&self) -> &'a [u8] {
        unsafe { bytes(self.raw.method.cast(), self.raw.method_len) }
    }
    /// Path and query, as received.
    pub fn target(&self) -> &'a [u8] {
        unsafe { bytes(self.raw.target.cast(), self.raw.target_len) }
    }
    pub fn body(&self) -> &'a [u8] {
        unsafe { bytes(self.raw.body, self.raw.body_len) }
    }
    /// The peer's IP address as text.
    pub fn remote_addr(&self) -> &'a [u8] {
        unsafe { bytes(self.raw.remote_addr.cast(), self.raw.remote_addr_len) }
    }
    pub fn remote_port(&self) -> u16 {
        self.raw.remote_port
    }
    /// (major, minor) of the request's HTTP version.
    pub fn http_version(&self) -> (u8, u8) {
        (self.raw.http_major, self.raw.http_minor)
    }
    pub fn header_count(&self) -> usize {
        self.raw.headers_len
    }
    /// All headers as (name, value), in received order, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let raw: &'a [flexi_header] = if self.raw.headers_len == 0 {
            &[]
        } else {
            unsafe { std::slice::from_raw_parts(self.raw.headers, self.raw.headers_len) }
        };
        raw.iter().map(|h| unsafe { (bytes(h.name.cast(), h.name_len), bytes(h.value.cast(), h.value_len)) })
    }
    /// The first header named `name` (ASCII case-insensitive), like flexi_request_header.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }
}

/// The response under construction. Every helper works in the per-thread arena
/// first and falls back to malloc'd blocks the host frees, exactly as flexilib.h.
pub struct Response<'a> {
    raw: &'a mut flexi_response,
}

impl<'a> Response<'a> {
    /// # Safety
    /// `raw` must point to the response handed to `handle_request`.
    pub unsafe fn from_raw(raw: *mut flexi_response) -> Self {
        Response { raw: unsafe { &mut *raw } }
    }
    pub fn raw(&mut self) -> &mut flexi_response {
        self.raw
    }

    fn heap_alloc(&mut self, n: usize) -> Result<*mut u8, Error> {
        let hdr = align_up(std::mem::size_of::<flexi_heap_block>());
        let b = unsafe { malloc(hdr + n) } as *mut flexi_heap_block;
        if b.is_null() {
            return Err(Error);
        }
        unsafe {
            (*b).next = self.raw.heap;
            (*b).size = hdr + n;
        }
        self.raw.heap = b;
        self.raw.heap_bytes += hdr + n;
        Ok(unsafe { (b as *mut u8).add(hdr) })
    }

    /// `n` bytes, 16-byte aligned, valid until the response is sent (flexi_alloc).
    pub fn alloc_raw(&mut self, n: usize) -> Result<*mut u8, Error> {
        let r = &mut *self.raw;
        let need = align_up(n);
        let in_arena = r.body == r.arena;
        let floor = if in_arena { r.body_len } else { 0 };
        if r.arena_top >= need && need <= r.arena_top.saturating_sub(floor) {
            r.arena_top -= need;
            if in_arena {
                r.body_cap = r.arena_top;
            }
            return Ok(unsafe { r.arena.add(r.arena_top) });
        }
        self.heap_alloc(need)
    }

    /// `n` zeroed bytes valid until the response is sent.
    pub fn alloc(&mut self, n: usize) -> Result<&'a mut [u8], Error> {
        let p = self.alloc_raw(n)?;
        unsafe {
            std::ptr::write_bytes(p, 0, n);
            Ok(std::slice::from_raw_parts_mut(p, n))
        }
    }

    fn grow_body(&mut self, want: usize) -> Result<(), Error> {
        let r = &mut *self.raw;
        let cap = (r.body_cap * 2).max(4096).max(want);
        if r.body == r.arena {
            let p = unsafe { malloc(cap) } as *mut u8;
            if p.is_null() {
                return Err(Error);
            }
            if r.body_len > 0 {
                unsafe { std::ptr::copy_nonoverlapping(r.body, p, r.body_len) };
            }
            r.body = p;
        } else {
            let p = unsafe { realloc(r.body as *mut c_void, cap) } as *mut u8;
            if p.is_null() {
                return Err(Error);
            }
            r.body = p;
            r.heap_bytes -= r.body_cap;
        }
        r.heap_bytes += cap;
        r.body_cap = cap;
        Ok(())
    }

    /// Append to the body (flexi_write).
    pub fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        if data.len() > self.raw.body_cap - self.raw.body_len {
            self.grow_body(self.raw.body_len + data.len())?;
        }
        if !data.is_empty() {
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.raw.body.add(self.raw.body_len), data.len()) };
        }
        self.raw.body_len += data.len();
        Ok(())
    }

    /// Append formatted text: `resp.print(format_args!(" {}", n))`, or use `write!`.
    pub fn print(&mut self, args: fmt::Arguments<'_>) -> Result<(), Error> {
        match args.as_str() {
            Some(s) => self.write(s.as_bytes()),
            None => fmt::Write::write_fmt(self, args).map_err(|_| Error),
        }
    }

    /// Add a response header; both are copied into the arena (flexi_add_header_n).
    pub fn add_header(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), Error> {
        let (name, value) = (name.as_ref(), value.as_ref());
        let size = std::mem::size_of::<flexi_resp_header>();
        let h = self.alloc_raw(size + name.len() + value.len())? as *mut flexi_resp_header;
        unsafe {
            let p = (h as *mut u8).add(size);
            std::ptr::copy_nonoverlapping(name.as_ptr(), p, name.len());
            std::ptr::copy_nonoverlapping(value.as_ptr(), p.add(name.len()), value.len());
            h.write(flexi_resp_header {
                next: std::ptr::null_mut(),
                name: p.cast(),
                name_len: name.len(),
                value: p.add(name.len()).cast(),
                value_len: value.len(),
            });
            if self.raw.headers_tail.is_null() {
                self.raw.headers = h;
            } else {
                (*self.raw.headers_tail).next = h;
            }
        }
        self.raw.headers_tail = h;
        self.raw.headers_len += 1;
        Ok(())
    }

    /// Set the status code (0, the default, means 200).
    pub fn set_status(&mut self, status: i32) {
        self.raw.status = status;
    }

    /// Set a custom reason phrase (copied into the arena).
    pub fn set_reason(&mut self, reason: &str) -> Result<(), Error> {
        let p = self.alloc_raw(reason.len())?;
        unsafe { std::ptr::copy_nonoverlapping(reason.as_ptr(), p, reason.len()) };
        self.raw.reason = p.cast();
        self.raw.reason_len = reason.len();
        Ok(())
    }
}

impl fmt::Write for Response<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// Run a handler for `handle_request`: 0 on Ok, 1 on Err or panic (a panic
/// must not unwind into the host). Used by [`export_plugin!`].
///
/// # Safety
/// `req` and `resp` must be the pointers the host passed to `handle_request`.
#[doc(hidden)]
pub unsafe fn call_handler<E>(
    req: *const flexi_request,
    resp: *mut flexi_response,
    handler: fn(&Request<'_>, &mut Response<'_>) -> Result<(), E>,
) -> i32 {
    let req = unsafe { Request::from_raw(req) };
    let mut resp = unsafe { Response::from_raw(resp) };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&req, &mut resp))) {
        Ok(Ok(())) => 0,
        _ => 1,
    }
}

/// Export a plugin: `handle_request` calling `handle` (an `Err` or a panic
/// answers 500 unless a status >= 400 was set), plus `flexi_abi_version`.
/// Optional hooks: `init = f` (`fn() -> bool`, false fails the load),
/// `deinit = f` and `request_deinit = f` (`fn()`).
///
/// ```ignore
/// flexilib::export_plugin!(handle, init = setup, request_deinit = after_each);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($handle:path $(, init = $init:path)? $(, deinit = $deinit:path)? $(, request_deinit = $rd:path)? $(,)?) => {
        /// The plugin ABI version this library was built for.
        #[no_mangle]
        pub static flexi_abi_version: u32 = $crate::ABI_VERSION;

        /// # Safety
        /// Called by the flexilib host only.
        #[no_mangle]
        pub unsafe extern "C" fn handle_request(
            req: *const $crate::sys::flexi_request,
            resp: *mut $crate::sys::flexi_response,
        ) -> i32 {
            unsafe { $crate::call_handler(req, resp, $handle) }
        }

        $(
            #[no_mangle]
            pub extern "C" fn flexi_init() -> i32 {
                match ::std::panic::catch_unwind(|| $init()) { Ok(true) => 0, _ => 1 }
            }
        )?
        $(
            #[no_mangle]
            pub extern "C" fn flexi_deinit() {
                let _ = ::std::panic::catch_unwind(|| $deinit());
            }
        )?
        $(
            #[no_mangle]
            pub extern "C" fn request_deinit() {
                let _ = ::std::panic::catch_unwind(|| $rd());
            }
        )?
    };
}
