//! Standard output that may close early.
//!
//! `egcfg report DB | head` closes the pipe after ten lines; `println!`
//! would panic there. Everything the commands print goes through [`out!`]
//! and [`outln!`] instead, which turn that case into [`ReaderGone`], an
//! error `main` ends on quietly and successfully, as `cat` would. Any other
//! write error stays an error.

use std::fmt;
use std::io::{self, Write};

use anyhow::Context;

/// The reader of standard output went away before egcfg finished writing.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed by its reader")]
pub struct ReaderGone;

/// Writes `args` (and a newline, if asked) to standard output.
pub fn write(args: fmt::Arguments<'_>, newline: bool) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| {
        if newline {
            out.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(ReaderGone.into()),
        other => other.context("cannot write to standard output"),
    }
}

/// `print!` that returns an error instead of panicking (see the module).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*), false)
    };
}

/// `println!` that returns an error instead of panicking (see the module).
macro_rules! outln {
    () => {
        $crate::stdout::write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*), true)
    };
}

pub(crate) use {out, outln};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_reader_gone_and_other_errors_are_not() {
        let gone: anyhow::Error = ReaderGone.into();
        assert!(gone.downcast_ref::<ReaderGone>().is_some());
        let other = Err::<(), _>(io::Error::from(io::ErrorKind::PermissionDenied))
            .context("cannot write to standard output")
            .unwrap_err();
        assert!(other.downcast_ref::<ReaderGone>().is_none());
    }
}
