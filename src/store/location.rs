//! Where the database lives: parsing `store.url` and creating the file
//! with owner-only permissions before SQLite opens it.
//!
//! On Unix the file gets mode 0600. On Windows a new file inherits the ACL
//! of its directory; idrecon does not rewrite ACLs itself (that needs the
//! Win32 security API, i.e. unsafe code, which this crate forbids). The
//! install step in deploy/windows/README.md restricts
//! `%ProgramData%\idrecon\data` to SYSTEM, Administrators and the service
//! account with inheritance, so the store file is owner-only from birth
//! (docs/windows.md, "Store file permissions").

use super::error::StoreError;
use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
#[cfg(unix)]
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Owner read/write only: the database holds names and e-mail addresses.
#[cfg(unix)]
pub(crate) const FILE_MODE: u32 = 0o600;

/// The file path of a store URL: `sqlite://relative.db`,
/// `sqlite:///absolute/path.db`, `sqlite:relative.db`, or a plain path.
pub fn database_path(url: &str) -> Result<PathBuf, StoreError> {
    let invalid = |reason: &str| StoreError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(invalid("it is empty; give sqlite://PATH or a file path"));
    }
    let path = if let Some(rest) = strip_prefix_ignore_case(trimmed, "sqlite:") {
        rest.strip_prefix("//").unwrap_or(rest)
    } else if let Some((scheme, _)) = trimmed.split_once("://") {
        return Err(invalid(&format!(
            "unsupported scheme {scheme:?}; idrecon stores in SQLite: use sqlite://PATH"
        )));
    } else {
        trimmed
    };
    if path.is_empty() {
        return Err(invalid("no file path after the scheme; use sqlite://PATH"));
    }
    if path.starts_with(":memory:") || path.contains("mode=memory") {
        return Err(invalid(
            "in-memory databases keep nothing between runs; give a file path",
        ));
    }
    if path.contains('?') {
        return Err(invalid(
            "query parameters are not supported; idrecon sets the SQLite options itself",
        ));
    }
    if path.ends_with('/') {
        return Err(invalid("the path names a directory, not a file"));
    }
    Ok(PathBuf::from(path))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Creates the database file with mode 0600 when it is missing. An existing
/// file readable or writable by others is narrowed to 0600 (with a warning).
#[cfg(unix)]
pub(crate) fn prepare_file(path: &Path) -> Result<(), StoreError> {
    let file_error = |action: &'static str| {
        move |source: std::io::Error| StoreError::File {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => {
            // The umask may have narrowed the mode further, never widened
            // it; set it exactly all the same.
            fs::set_permissions(path, fs::Permissions::from_mode(FILE_MODE))
                .map_err(file_error("set permissions of"))?;
            tracing::info!(path = %path.display(), "created database file");
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let meta = fs::metadata(path).map_err(file_error("inspect"))?;
            if !meta.is_file() {
                return Err(StoreError::File {
                    action: "open",
                    path: path.to_path_buf(),
                    source: std::io::Error::new(ErrorKind::InvalidInput, "not a regular file"),
                });
            }
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o700))
                    .map_err(file_error("restrict permissions of"))?;
                tracing::warn!(
                    path = %path.display(),
                    old_mode = format!("{mode:o}"),
                    new_mode = format!("{:o}", mode & 0o700),
                    "database file was accessible to other users; restricted it to its owner"
                );
            }
            Ok(())
        }
        Err(e) => Err(file_error("create")(e)),
    }
}

/// Creates the database file when it is missing; it inherits the ACL of its
/// directory (see the module documentation for why no ACL is written here).
/// An existing path that is not a regular file is refused.
#[cfg(not(unix))]
pub(crate) fn prepare_file(path: &Path) -> Result<(), StoreError> {
    let file_error = |action: &'static str| {
        move |source: std::io::Error| StoreError::File {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(_) => {
            tracing::info!(path = %path.display(), "created database file (ACL inherited from its directory)");
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let meta = fs::metadata(path).map_err(file_error("inspect"))?;
            if meta.is_file() {
                Ok(())
            } else {
                Err(StoreError::File {
                    action: "open",
                    path: path.to_path_buf(),
                    source: std::io::Error::new(ErrorKind::InvalidInput, "not a regular file"),
                })
            }
        }
        Err(e) => Err(file_error("create")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(
            database_path("sqlite://idrecon.db").unwrap(),
            PathBuf::from("idrecon.db")
        );
        assert_eq!(
            database_path("sqlite:///var/lib/idrecon/x.db").unwrap(),
            PathBuf::from("/var/lib/idrecon/x.db")
        );
        assert_eq!(
            database_path("SQLite:data/x.db").unwrap(),
            PathBuf::from("data/x.db")
        );
        assert_eq!(
            database_path(" /tmp/plain.db ").unwrap(),
            PathBuf::from("/tmp/plain.db")
        );
    }

    #[test]
    fn rejects_what_is_not_a_sqlite_file() {
        for (url, needle) in [
            ("", "empty"),
            ("postgres://db/idrecon", "unsupported scheme \"postgres\""),
            ("sqlite://", "no file path"),
            ("sqlite::memory:", "in-memory"),
            ("sqlite://x.db?mode=rwc", "query parameters"),
            ("sqlite:///var/lib/", "directory"),
        ] {
            let err = database_path(url).unwrap_err().to_string();
            assert!(err.contains(needle), "{url:?}: {err}");
            assert!(err.contains(&format!("{url:?}")), "{url:?}: {err}");
        }
    }
}
