//! The exit codes, one mapping for the whole CLI.

use std::process::ExitCode;

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Done, and everything checked out.
    Ok,
    /// Done, and it found problems: an invalid bundle, a failing test case.
    Failed,
    /// Could not do the work: unreadable file, malformed input, bad usage.
    Trouble,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        match exit {
            Exit::Ok => ExitCode::SUCCESS,
            Exit::Failed => ExitCode::from(1),
            Exit::Trouble => ExitCode::from(2),
        }
    }
}
