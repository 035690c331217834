//! The application-level error and the process exit codes of docs/contract.md.
//!
//! Library modules return their own thiserror types; the binary converts
//! them into [`AppError`] and exits with [`AppError::exit_code`].

use crate::config::{ConfigError, DEFAULT_FINDINGS_EXIT_CODE};

/// Process exit codes (docs/contract.md, "Exit codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitCode {
    /// Run completed, nothing left to fix (also `--help`, `--version`).
    Ok,
    /// Any other failure (1).
    Failure,
    /// Run completed with findings still open (2).
    FindingsOpen,
    /// Configuration error, including bad command-line arguments (3).
    Config,
    /// Run aborted for safety (incomplete source, threshold exceeded, lock held) (4).
    Aborted,
    /// Run completed with findings still open, reported with the code chosen
    /// by `--findings-exit-code` / `report.findings_exit_code` for schedulers
    /// that count every non-zero exit as failed (0, or 5 to 255: never a
    /// code that means something else).
    FindingsOpenAs(u8),
}

impl ExitCode {
    /// The numeric code handed to the operating system (0 to 255).
    pub fn as_i32(self) -> i32 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Failure => 1,
            ExitCode::FindingsOpen => 2,
            ExitCode::Config => 3,
            ExitCode::Aborted => 4,
            ExitCode::FindingsOpenAs(code) => i32::from(code),
        }
    }

    /// `FindingsOpen` reported as `findings_exit_code` instead of 2; every
    /// other code unchanged.
    pub fn with_findings_code(self, findings_exit_code: u8) -> ExitCode {
        match self {
            ExitCode::FindingsOpen if findings_exit_code != DEFAULT_FINDINGS_EXIT_CODE => {
                ExitCode::FindingsOpenAs(findings_exit_code)
            }
            other => other,
        }
    }
}

/// Checks a findings exit code: 0, 2 or 5 to 255. 1, 3 and 4 mean failure,
/// configuration error and safety abort; a night with findings must not
/// look like one of those.
pub fn check_findings_exit_code(code: i64) -> Result<u8, String> {
    match u8::try_from(code) {
        Ok(c @ (0 | 2 | 5..=255)) => Ok(c),
        Ok(c) => Err(format!(
            "{c} already means {} (contract.md, \"Exit codes\"); use 0, 2 or 5 to 255",
            match c {
                1 => "failure",
                3 => "configuration error",
                _ => "aborted for safety",
            }
        )),
        Err(_) => Err(format!("{code} is not an exit code; use 0, 2 or 5 to 255")),
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        match code {
            ExitCode::FindingsOpenAs(c) => std::process::ExitCode::from(c),
            // 0..=4.
            other => std::process::ExitCode::from(other.as_i32() as u8),
        }
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
        assert_eq!(ExitCode::FindingsOpenAs(0).as_i32(), 0);
        assert_eq!(ExitCode::FindingsOpenAs(100).as_i32(), 100);
    }

    #[test]
    fn findings_code_replaces_only_findings_open() {
        assert_eq!(
            ExitCode::FindingsOpen.with_findings_code(0),
            ExitCode::FindingsOpenAs(0)
        );
        assert_eq!(
            ExitCode::FindingsOpen.with_findings_code(2),
            ExitCode::FindingsOpen
        );
        for failure in [
            ExitCode::Failure,
            ExitCode::Config,
            ExitCode::Aborted,
            ExitCode::Ok,
        ] {
            assert_eq!(failure.with_findings_code(0), failure);
        }
    }

    #[test]
    fn findings_code_may_not_mean_something_else() {
        assert_eq!(check_findings_exit_code(0), Ok(0));
        assert_eq!(check_findings_exit_code(2), Ok(2));
        assert_eq!(check_findings_exit_code(255), Ok(255));
        for bad in [1, 3, 4] {
            let err = check_findings_exit_code(bad).unwrap_err();
            assert!(err.contains("already means"), "{err}");
        }
        assert!(check_findings_exit_code(256)
            .unwrap_err()
            .contains("not an exit code"));
        assert!(check_findings_exit_code(-1)
            .unwrap_err()
            .contains("not an exit code"));
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
