//! Loading: the TOML file and the `IDRECON__SECTION__KEY` environment
//! variables, layered with figment (the environment wins), extracted into
//! the raw tree ([`RawConfig`], which refuses unknown sections and keys),
//! then converted into the typed [`Config`].
//!
//! The environment comes in as a map (the process environment in
//! production, [`process_env`]), not through figment's `Env` provider:
//! `Env` reads only the process environment, which tests running in
//! parallel cannot set safely, and it guesses each value's type (`0123`
//! would become the number 123, `true` a boolean), which would corrupt a
//! password. [`EnvOverrides`] maps names as `Env::prefixed("IDRECON__")
//! .split("__")` with lower-cased keys does, and keeps every value as text;
//! the typed conversion reads text as the key's type
//! (`super::loose`).

use super::convert::Layered;
use super::error::ConfigError;
use super::raw::RawConfig;
use super::typed::Config;
use figment::error::{Actual, Kind};
use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use std::collections::HashMap;
use std::path::Path;

/// Prefix of the environment variables that override config keys.
pub const ENV_PREFIX: &str = "IDRECON__";

/// The process environment as a map, for [`Config::load`]. Variables whose
/// name or value is not valid UTF-8 are left out.
pub fn process_env() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

fn is_override_var(name: &str) -> bool {
    name.get(..ENV_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
}

impl Config {
    /// Reads the config file at `path`, applies `IDRECON__SECTION__KEY`
    /// overrides from `env` and validates the result. Relative paths are
    /// taken relative to the file's directory.
    ///
    /// A missing file is [`ConfigError::NotFound`] unless `env` holds at
    /// least one `IDRECON__…` variable: then the configuration is taken from
    /// the environment alone (relative paths relative to the working
    /// directory), and validation errors say that the file was not found.
    pub fn load(path: &Path, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let base_dir = path.parent().unwrap_or(Path::new(""));
        match std::fs::read_to_string(path) {
            Ok(text) => load_layers(&text, env, base_dir, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !env.keys().any(|k| is_override_var(k)) {
                    return Err(ConfigError::NotFound {
                        path: path.to_path_buf(),
                    });
                }
                load_layers("", env, Path::new(""), "<environment>").map_err(|e| match e {
                    ConfigError::Invalid { key, message } => ConfigError::Invalid {
                        key,
                        message: format!(
                            "{message} (config file {} not found; configuration taken from \
                             IDRECON__ environment variables only)",
                            path.display()
                        ),
                    },
                    other => other,
                })
            }
            Err(source) => Err(ConfigError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses `text` as a config file, applies overrides from `env` and
    /// validates. Relative paths are resolved against `base_dir`.
    pub fn from_toml_str(
        text: &str,
        env: &HashMap<String, String>,
        base_dir: &Path,
    ) -> Result<Config, ConfigError> {
        load_layers(text, env, base_dir, "<config>")
    }
}

fn load_layers(
    text: &str,
    env: &HashMap<String, String>,
    base_dir: &Path,
    origin: &str,
) -> Result<Config, ConfigError> {
    check_toml(text, origin)?;
    let overrides = EnvOverrides::from_env(env)?;
    let env_origins = overrides.origins();
    let figment = Figment::from(Toml::string(text)).merge(overrides);
    let raw: RawConfig = figment
        .extract()
        .map_err(|e| from_figment(e, &env_origins))?;
    Config::try_from(Layered {
        raw,
        env_origins,
        base_dir: base_dir.to_path_buf(),
    })
}

/// Refuses text that is not TOML, naming the line and column (figment's own
/// error has no position).
fn check_toml(text: &str, origin: &str) -> Result<(), ConfigError> {
    toml::from_str::<toml::Table>(text)
        .map(|_| ())
        .map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((1, 1));
            ConfigError::Parse {
                origin: origin.to_string(),
                line,
                column,
                message: e.message().trim().lines().collect::<Vec<_>>().join("; "),
            }
        })
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before
        .get(line_start..)
        .map_or(1, |l| l.chars().count() + 1);
    (line, column)
}

/// One `IDRECON__SECTION__KEY` variable.
struct Override {
    section: String,
    key: String,
    var: String,
    value: String,
}

/// The `IDRECON__SECTION__KEY` variables as a figment provider: section and
/// key lower-cased, every value text.
struct EnvOverrides(Vec<Override>);

impl EnvOverrides {
    fn from_env(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut vars: Vec<(&String, &String)> =
            env.iter().filter(|(k, _)| is_override_var(k)).collect();
        vars.sort();
        let mut overrides = Vec::with_capacity(vars.len());
        for (name, value) in vars {
            let rest = name.get(ENV_PREFIX.len()..).unwrap_or_default();
            let parts: Vec<&str> = rest.split("__").collect();
            let [section, key] = parts.as_slice() else {
                return Err(ConfigError::invalid(
                    name.as_str(),
                    "expected the form IDRECON__SECTION__KEY (e.g. IDRECON__AZURE__CLIENT_SECRET)",
                ));
            };
            if section.is_empty() || key.is_empty() {
                return Err(ConfigError::invalid(
                    name.as_str(),
                    "expected the form IDRECON__SECTION__KEY (e.g. IDRECON__AZURE__CLIENT_SECRET)",
                ));
            }
            overrides.push(Override {
                section: section.to_ascii_lowercase(),
                key: key.to_ascii_lowercase(),
                var: name.clone(),
                value: value.clone(),
            });
        }
        Ok(EnvOverrides(overrides))
    }

    /// `section.key` → variable name.
    fn origins(&self) -> HashMap<String, String> {
        self.0
            .iter()
            .map(|o| (format!("{}.{}", o.section, o.key), o.var.clone()))
            .collect()
    }
}

impl Provider for EnvOverrides {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("`{ENV_PREFIX}` environment variables")).interpolater(
            |_: &Profile, keys: &[&str]| {
                format!("{ENV_PREFIX}{}", keys.join("__").to_ascii_uppercase())
            },
        )
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut sections = Dict::new();
        for o in &self.0 {
            let entry = sections
                .entry(o.section.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, keys) = entry {
                keys.insert(o.key.clone(), Value::from(o.value.clone()));
            }
        }
        Ok(Profile::Default.collect(sections))
    }
}

/// A figment extraction error as a key-named [`ConfigError`].
fn from_figment(error: figment::Error, env_origins: &HashMap<String, String>) -> ConfigError {
    let Some(error) = error.into_iter().next() else {
        return ConfigError::invalid("config", "invalid configuration");
    };
    let path = error.path.join(".");
    match &error.kind {
        Kind::UnknownField(field, expected) => {
            // figment's path already ends with the unknown field.
            let key = if path.is_empty() { field.clone() } else { path };
            let is_section = !key.contains('.');
            // A variable naming an unknown key: the error names the variable.
            let section_prefix = format!("{key}.");
            // (The first in name order, so the message does not vary.)
            if let Some((full, var)) = env_origins
                .iter()
                .filter(|(k, _)| **k == key || k.starts_with(&section_prefix))
                .min()
            {
                return ConfigError::invalid(
                    var.as_str(),
                    format!("unknown configuration key `{full}`"),
                );
            }
            if is_section {
                return ConfigError::invalid(
                    key,
                    format!("unknown section (known sections: {})", expected.join(", ")),
                );
            }
            let hint = expected
                .iter()
                .find(|name| name.eq_ignore_ascii_case(field))
                .map(|name| format!(" (did you mean `{name}`? keys are lower case)"))
                .unwrap_or_default();
            ConfigError::invalid(key, format!("unknown key{hint}"))
        }
        Kind::InvalidType(actual, expected) => {
            let found = actual_name(actual);
            if error.path.len() == 1 && expected.starts_with("struct ") {
                ConfigError::invalid(
                    path.as_str(),
                    format!("must be a table ([{path}]), found {found}"),
                )
            } else {
                ConfigError::invalid(path, format!("expected {expected}, found {found}"))
            }
        }
        Kind::Message(message) => ConfigError::invalid(path, message.clone()),
        other => ConfigError::invalid(path, other.to_string()),
    }
}

/// The TOML name of a value's type.
fn actual_name(actual: &Actual) -> &'static str {
    match actual {
        Actual::Bool(_) => "boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "integer",
        Actual::Float(_) => "float",
        Actual::Char(_) | Actual::Str(_) => "string",
        Actual::Seq => "array",
        Actual::Map => "table",
        _ => "a value of another type",
    }
}
