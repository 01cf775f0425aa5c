//! The FlexiLib sample plugin's behaviour in Rust, over the flexilib crate.
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
use flexilib::{Request, Response};
use std::time::Duration;

/// Leading decimal digits of `s` (like the C example: stops at the first non-digit).
fn parse_number(s: &[u8]) -> u64 {
    s.iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0u64, |v, c| v.wrapping_mul(10).wrapping_add(u64::from(c - b'0')))
}

/// Why the handler failed; any Err answers 500 unless a status >= 400 was set.
#[derive(Debug)]
enum Failure {
    OutOfMemory,
    Thrown,
}

impl From<flexilib::Error> for Failure {
    fn from(_: flexilib::Error) -> Self {
        Failure::OutOfMemory
    }
}

fn handle(req: &Request, resp: &mut Response) -> Result<(), Failure> {
    resp.add_header("X-custom-foo", "bar")?;

    if let Some(ms) = req.header("x-slow") {
        std::thread::sleep(Duration::from_millis(parse_number(ms)));
        return Ok(resp.write(b"i am slow")?);
    }

    if req.header("host").is_some_and(|h| h.starts_with(b"iam")) {
        return Ok(resp.write(b"iam response")?);
    }

    if req.target().starts_with(b"/echo") {
        for part in [req.method(), b" ", req.target(), b"\n", req.body()] {
            resp.write(part)?;
        }
        return Ok(());
    }

    if let Some(v) = req.header("x-log-this") {
        resp.write(v)?;
    }
    resp.print(format_args!(" {}", req.header_count()))?;

    if let Some(v) = req.header("x-status") {
        resp.set_status((parse_number(v) & 0x7fff_ffff) as i32);
    }

    if req.header("x-throw").is_some() {
        return Err(Failure::Thrown);
    }
    Ok(())
}

flexilib::export_plugin!(handle);
