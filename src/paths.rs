//! Default locations of the config file and the store, following each
//! platform's conventions: the working directory on Unix (the systemd units
//! and the container set it), `%ProgramData%\idrecon\` on Windows (where
//! deploy/windows/README.md installs the config and the data directory).

use std::path::PathBuf;

/// Default `--config` on Unix: `idrecon.toml` in the working directory.
#[cfg(not(windows))]
pub fn default_config_path() -> PathBuf {
    PathBuf::from("./idrecon.toml")
}

/// Default `--config` on Windows: `%ProgramData%\idrecon\idrecon.toml`.
#[cfg(windows)]
pub fn default_config_path() -> PathBuf {
    program_data_dir().join("idrecon.toml")
}

/// Default `store.url` on Unix: `idrecon.db` in the working directory.
#[cfg(not(windows))]
pub fn default_store_url() -> String {
    crate::config::DEFAULT_STORE_URL.to_string()
}

/// Default `store.url` on Windows: `%ProgramData%\idrecon\data\idrecon.db`
/// (forward slashes, as SQLite URLs take them).
#[cfg(windows)]
pub fn default_store_url() -> String {
    let path = program_data_dir().join("data").join("idrecon.db");
    format!("sqlite://{}", path.display().to_string().replace('\\', "/"))
}

/// `%ProgramData%\idrecon`; `C:\ProgramData\idrecon` when the variable is
/// unset (it is set on every Windows since Vista).
#[cfg(windows)]
pub fn program_data_dir() -> PathBuf {
    std::env::var_os("ProgramData")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
        .join("idrecon")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(windows))]
    #[test]
    fn unix_defaults_are_in_the_working_directory() {
        assert_eq!(default_config_path(), PathBuf::from("./idrecon.toml"));
        assert_eq!(default_store_url(), "sqlite://idrecon.db");
    }
}
