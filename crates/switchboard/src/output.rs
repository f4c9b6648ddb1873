//! Writing to standard output from the client subcommands.
//!
//! `println!` panics when stdout is a closed pipe (`switchboard tools | head -3`). These macros
//! write through [`write_out`], which ends the process quietly on a broken pipe, as command-line
//! tools do, and ignores other write errors (there is nowhere better to report them).

use std::io::Write;

/// Write `text` to stdout; exit with status 0 if the reader has gone away.
pub fn write_out(text: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let result = out.write_fmt(text).and_then(|()| out.flush());
    if let Err(error) = result
        && error.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// `print!` that tolerates a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_out(format_args!($($arg)*)) };
}

/// `println!` that tolerates a closed pipe.
macro_rules! outln {
    () => { $crate::output::write_out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}
