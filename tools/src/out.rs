//! Standard output for the command-line tools. A reader that goes away early
//! (`vecswitch replay ... | head -1`) is not an error: as with ovs-ofctl, which ignores
//! SIGPIPE and exits 0, the rest of the output is dropped and the command runs to its end,
//! where `println!` would panic. [`outln!`](crate::outln) and [`out!`](crate::out) print
//! through here; other write errors (a full disk) are returned.

use std::fmt;
use std::io::{self, Write};

/// Writes `args` to standard output (flushed); a closed pipe is success.
pub fn write_out(args: fmt::Arguments) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    closed_is_ok(stdout.write_fmt(args).and_then(|()| stdout.flush()))
}

/// The result of a write to standard output, with a reader that went away taken as success.
pub fn closed_is_ok(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

/// `println!` through [`write_out`]: returns `io::Result<()>`.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::out::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` through [`write_out`]: returns `io::Result<()>`.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write_out(format_args!($($arg)*))
    };
}
