//! The application's error: what went wrong, for people, and the documented exit code
//! it ends the process with.
//!
//! Every failure of a command before or around a run (bad input, a lock held, a store
//! that cannot be written) is one of these, so the exit code travels with the reason
//! as a type instead of being a bare `u8` that was printed about somewhere else. The
//! CLI prints it ([`AppError::report`]) and exits with [`AppError::exit_code`].

use crate::exit;

/// A failure that ends a command, with its exit code (`crate::exit`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppError {
    code: u8,
    /// One line: what is wrong and where.
    pub message: String,
    /// Printed before the message: a rendered diagnostic (a runbook's or a sim
    /// config's problems, each with its span).
    pub detail: Option<String>,
    /// Printed after the message: what to do about it.
    pub help: Option<String>,
}

impl AppError {
    /// An error ending the process with `code`.
    pub fn new(code: u8, message: impl std::fmt::Display) -> Self {
        Self {
            code,
            message: message.to_string(),
            detail: None,
            help: None,
        }
    }

    /// Bad input: exit 2, nothing was changed.
    pub fn usage(message: impl std::fmt::Display) -> Self {
        Self::new(exit::USAGE, message)
    }

    /// With a rendered diagnostic shown before the message.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// With a hint shown after the message.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The documented exit code (`crate::exit`).
    pub fn exit_code(&self) -> u8 {
        self.code
    }

    /// Prints it to stderr (detail, `error: message`, `help: ...`) and returns the
    /// exit code.
    pub fn report(&self) -> u8 {
        if let Some(d) = &self.detail {
            eprint!("{d}");
        }
        eprintln!("error: {}", self.message);
        if let Some(h) = &self.help {
            eprintln!("help: {h}");
        }
        self.code
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AppError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_travels_with_the_message() {
        let e = AppError::new(exit::LOCK_HELD, "held by run r1").with_help("resume r1");
        assert_eq!(e.exit_code(), exit::LOCK_HELD);
        assert_eq!(e.to_string(), "held by run r1");
        assert_eq!(AppError::usage("bad flag").exit_code(), exit::USAGE);
    }
}
