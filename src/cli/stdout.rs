//! What commands print on standard output. A closed output (`schema | head`) ends nothing: the
//! rest is dropped quietly, and a command that writes to AWS goes on to the end of its work,
//! since its outcome matters more than its report. Printing never panics.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once standard output is found closed; stdout is one per process, and so is this.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` to standard output, unless it is closed.
pub fn write(args: fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        // A closed pipe is the reader's choice; anything else (a full disk) is not ours to
        // report on the stream that failed: stop writing either way, and say so on stderr.
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("warning: standard output failed ({e}); the rest of the output is dropped");
        }
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// `print!` that never panics (see [`write`]).
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::stdout::write(format_args!($($arg)*)) };
}

/// `println!` that never panics (see [`write`]).
macro_rules! outln {
    () => { $crate::cli::stdout::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::stdout::write(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {out, outln};
