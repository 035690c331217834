//! Files idrecon writes or reads that others must not see: report files
//! (`--output`) are created owner-only without following a symlink planted
//! at their path, and the config file and `*_file` secrets are checked for
//! group/other read access at startup (a warning, as kanidm's tools give).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `contents` to `path` as a new owner-only file (0600 on Unix,
/// whatever the umask): written to a temporary file in the same directory,
/// synced, then renamed over `path`. The rename replaces whatever is at
/// `path` (a symlink included) instead of writing through it, and readers
/// never see a half-written file.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // tempfile creates the file with O_EXCL and mode 0600 on Unix.
    let mut file = tempfile::Builder::new()
        .prefix(".idrecon-output-")
        .tempfile_in(dir)?;
    file.write_all(contents)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Why `path` should not be readable by others, if it is: its mode lets the
/// group or everyone read it. `None` when it is owner-only, missing or
/// unreadable (reading it reports those). On non-Unix systems there are no
/// mode bits to check (ACLs decide), so nothing is said.
pub fn readable_by_others(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            return Some(format!(
                "{} is readable by {} (mode {mode:04o}); restrict it with `chmod 600 {}`",
                path.display(),
                if mode & 0o004 != 0 {
                    "everyone"
                } else {
                    "its group"
                },
                path.display()
            ));
        }
        None
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Warnings for the config file at `config_path` and every `*_file` secret
/// it (or an `IDRECON__SECTION__KEY_FILE` override in `env`) names that
/// the group or everyone may read. Relative secret paths are taken from
/// the config file's directory, as the loader does. `tls.ca_file` is a
/// public CA bundle, not a secret.
pub fn permission_warnings(config_path: &Path, env: &HashMap<String, String>) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(w) = readable_by_others(config_path) {
        warnings.push(format!("the config file {w}"));
    }
    let base = config_path.parent().unwrap_or(Path::new("."));
    for (key, path) in secret_files(config_path, env) {
        let path = if path.is_absolute() {
            path
        } else {
            base.join(path)
        };
        if let Some(w) = readable_by_others(&path) {
            warnings.push(format!("the secret file of {key}: {w}"));
        }
    }
    warnings
}

/// `section.key_file` → path, from the config file and then `env`.
fn secret_files(config_path: &Path, env: &HashMap<String, String>) -> Vec<(String, PathBuf)> {
    let mut found: HashMap<String, PathBuf> = HashMap::new();
    let text = std::fs::read_to_string(config_path).unwrap_or_default();
    if let Ok(toml::Value::Table(root)) = text.parse::<toml::Value>() {
        for (section, value) in &root {
            let toml::Value::Table(table) = value else {
                continue;
            };
            for (key, value) in table {
                if let (true, toml::Value::String(path)) = (is_secret_file_key(key), value) {
                    found.insert(format!("{section}.{key}"), PathBuf::from(path));
                }
            }
        }
    }
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("IDRECON__") else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        if is_secret_file_key(&key) {
            found.insert(
                format!("{}.{key}", section.to_ascii_lowercase()),
                PathBuf::from(value),
            );
        }
    }
    let mut found: Vec<_> = found.into_iter().collect();
    found.sort();
    found
}

fn is_secret_file_key(key: &str) -> bool {
    key.ends_with("_file") && key != "ca_file"
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn open_config_and_secret_files_are_named_and_private_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("idrecon.toml");
        std::fs::write(
            &config,
            "[azure]\nclient_secret_file = \"azure.secret\"\n[tls]\nca_file = \"ca.pem\"\n",
        )
        .unwrap();
        let secret = dir.path().join("azure.secret");
        let flow = dir.path().join("flow.secret");
        let ca = dir.path().join("ca.pem");
        for f in [&secret, &flow, &ca] {
            std::fs::write(f, "x").unwrap();
        }
        chmod(&config, 0o644);
        chmod(&secret, 0o640);
        chmod(&flow, 0o604);
        chmod(&ca, 0o644);
        let env = HashMap::from([(
            "IDRECON__FLOW__PASSWORD_FILE".to_string(),
            flow.display().to_string(),
        )]);
        let warnings = permission_warnings(&config, &env);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].starts_with("the config file"), "{warnings:?}");
        assert!(warnings[0].contains("mode 0644"), "{warnings:?}");
        assert!(
            warnings[1].contains("azure.client_secret_file"),
            "{warnings:?}"
        );
        assert!(warnings[1].contains("by its group"), "{warnings:?}");
        assert!(warnings[2].contains("flow.password_file"), "{warnings:?}");
        assert!(warnings[2].contains("by everyone"), "{warnings:?}");

        for f in [&config, &secret, &flow] {
            chmod(f, 0o600);
        }
        assert!(permission_warnings(&config, &env).is_empty());
    }
}
