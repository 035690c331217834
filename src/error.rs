//! The application-level error and the process exit codes of docs/contract.md.
//!
//! Library modules return their own thiserror types; the binary converts
//! them into [`AppError`] and exits with [`AppError::exit_code`].

use crate::config::ConfigError;

/// Process exit codes (docs/contract.md, "Exit codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ExitCode {
    /// Run completed, nothing left to fix (also `--help`, `--version`).
    Ok = 0,
    /// Any other failure.
    Failure = 1,
    /// Run completed with findings still open.
    FindingsOpen = 2,
    /// Configuration error, including bad command-line arguments.
    Config = 3,
    /// Run aborted for safety (incomplete source, threshold exceeded, lock held).
    Aborted = 4,
}

impl ExitCode {
    /// The numeric code handed to the operating system.
    pub fn as_i32(self) -> i32 {
        self as i32
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        // All codes are 0..=4, so the cast cannot truncate.
        std::process::ExitCode::from(code.as_i32() as u8)
    }
}

/// An error that ends the program, carrying its exit code.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration (file, environment or arguments) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The run was stopped for safety; the text says why.
    #[error("run aborted: {0}")]
    Aborted(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl AppError {
    /// The exit code this error ends the process with. A [`ConfigError`]
    /// wrapped in [`AppError::Other`] still counts as a configuration error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            AppError::Config(_) => ExitCode::Config,
            AppError::Aborted(_) => ExitCode::Aborted,
            AppError::Other(e) if e.downcast_ref::<ConfigError>().is_some() => ExitCode::Config,
            AppError::Other(_) => ExitCode::Failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_match_the_contract() {
        assert_eq!(ExitCode::Ok.as_i32(), 0);
        assert_eq!(ExitCode::Failure.as_i32(), 1);
        assert_eq!(ExitCode::FindingsOpen.as_i32(), 2);
        assert_eq!(ExitCode::Config.as_i32(), 3);
        assert_eq!(ExitCode::Aborted.as_i32(), 4);
    }

    #[test]
    fn errors_map_to_exit_codes() {
        let config = AppError::from(ConfigError::invalid("fix.max_changes", "bad"));
        assert_eq!(config.exit_code(), ExitCode::Config);
        assert_eq!(config.to_string(), "fix.max_changes: bad");
        let aborted = AppError::Aborted("lock held by pid 7".into());
        assert_eq!(aborted.exit_code(), ExitCode::Aborted);
        assert_eq!(aborted.to_string(), "run aborted: lock held by pid 7");
        let other = AppError::from(anyhow::anyhow!("connection refused"));
        assert_eq!(other.exit_code(), ExitCode::Failure);
        let wrapped = AppError::from(anyhow::Error::new(ConfigError::invalid("a.b", "c")));
        assert_eq!(wrapped.exit_code(), ExitCode::Config);
    }
}
