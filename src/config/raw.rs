//! The configuration as written: one serde tree of every section and key,
//! before validation. Unknown sections and keys are refused by serde
//! (`deny_unknown_fields`); values are checked and parsed by the conversion
//! to [`super::Config`] (`super::typed`).
//!
//! Strings are kept as written (an empty string means "not set"); booleans,
//! numbers and lists are [`Loose`] so that `IDRECON__…` text can fill them.
//! docs/configuration.md describes every key.

use super::loose::Loose;
use secrecy::SecretString;
use serde::Deserialize;

/// The whole file (merged with the environment).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub store: RawStore,
    pub azure: Option<RawAzure>,
    pub ifs: Option<RawIfs>,
    pub flow: Option<RawFlow>,
    #[serde(default)]
    pub matching: RawMatching,
    #[serde(default)]
    pub fix: RawFix,
    #[serde(default)]
    pub schedule: RawSchedule,
    #[serde(default)]
    pub report: RawReport,
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub tls: RawTls,
    #[serde(default)]
    pub safety: RawSafety,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAzure {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub client_secret_file: Option<String>,
    pub certificate_file: Option<String>,
    pub login_url: Option<String>,
    pub graph_url: Option<String>,
    pub group_id: Option<String>,
    pub include_guests: Option<Loose<bool>>,
    pub allow_insecure_http: Option<Loose<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIfs {
    pub url: Option<String>,
    pub issuer_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub client_secret_file: Option<String>,
    pub users_path: Option<String>,
    pub directory_id_field: Option<String>,
    pub email_field: Option<String>,
    pub page_size: Option<Loose<i128>>,
    pub concurrency: Option<Loose<i128>>,
    pub token_auth_method: Option<String>,
    pub allow_insecure_http: Option<Loose<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlow {
    pub source: Option<String>,
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub password_file: Option<String>,
    pub csv_path: Option<String>,
    pub case_insensitive_ids: Option<Loose<bool>>,
    pub allow_insecure_http: Option<Loose<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatching {
    pub case_sensitive: Option<Loose<bool>>,
    pub ifs_rules: Option<Loose<Vec<String>>>,
    pub flow_rules: Option<Loose<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFix {
    pub enabled: Option<Loose<bool>>,
    pub max_changes: Option<Loose<i128>>,
    pub max_change_percent: Option<Loose<f64>>,
    pub deactivate_orphans: Option<Loose<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub cron: Option<String>,
    pub timezone: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReport {
    pub send: Option<String>,
    pub to: Option<Loose<Vec<String>>>,
    pub from: Option<String>,
    pub transport: Option<String>,
    pub smtp_url: Option<String>,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<SecretString>,
    pub smtp_password_file: Option<String>,
    pub tenant_label: Option<String>,
    pub allow_insecure_http: Option<Loose<bool>>,
    pub findings_exit_code: Option<Loose<i128>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub auth_token: Option<SecretString>,
    pub auth_token_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_body_bytes: Option<Loose<i128>>,
    pub max_field_chars: Option<Loose<i128>>,
    pub max_pages: Option<Loose<i128>>,
    pub fetch_deadline: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub ca_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSafety {
    pub max_source_drop_percent: Option<Loose<f64>>,
}

/// Every configuration key as `section.key`, in the order of the raw tree.
pub fn all_keys() -> Vec<String> {
    use serde_aux::serde_introspection::serde_introspect;
    let sections: [(&str, &[&str]); 12] = [
        ("store", serde_introspect::<RawStore>()),
        ("azure", serde_introspect::<RawAzure>()),
        ("ifs", serde_introspect::<RawIfs>()),
        ("flow", serde_introspect::<RawFlow>()),
        ("matching", serde_introspect::<RawMatching>()),
        ("fix", serde_introspect::<RawFix>()),
        ("schedule", serde_introspect::<RawSchedule>()),
        ("report", serde_introspect::<RawReport>()),
        ("server", serde_introspect::<RawServer>()),
        ("limits", serde_introspect::<RawLimits>()),
        ("tls", serde_introspect::<RawTls>()),
        ("safety", serde_introspect::<RawSafety>()),
    ];
    sections
        .iter()
        .flat_map(|(section, keys)| keys.iter().map(move |key| format!("{section}.{key}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_aux::serde_introspection::serde_introspect;

    #[test]
    fn all_keys_covers_every_section_of_the_raw_tree() {
        let keys = super::all_keys();
        for section in serde_introspect::<super::RawConfig>() {
            let prefix = format!("{section}.");
            assert!(keys.iter().any(|k| k.starts_with(&prefix)), "{section}");
        }
    }
}
