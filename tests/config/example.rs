//! The shipped example config parses, and it and docs/configuration.md
//! mention every key idrecon understands.

use idrecon::config::{all_keys, AzureCredential, Config};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::path::Path;

fn repo_file(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

#[test]
fn example_config_parses_with_secrets_from_env() {
    let env: HashMap<String, String> = [
        ("IDRECON__AZURE__CLIENT_SECRET", "aad-env"),
        ("IDRECON__IFS__CLIENT_SECRET", "ifs-env"),
        ("IDRECON__FLOW__PASSWORD", "flow-env"),
        ("IDRECON__REPORT__SMTP_PASSWORD", "smtp-env"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let c = Config::load(&repo_file("idrecon.example.toml"), &env).unwrap();
    match &c.azure.credential {
        AzureCredential::Secret(s) => assert_eq!(s.expose_secret(), "aad-env"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.ifs.client_secret.expose_secret(), "ifs-env");
    assert_eq!(
        c.flow.password.as_ref().unwrap().expose_secret(),
        "flow-env"
    );
    assert_eq!(
        c.report.smtp_password.as_ref().unwrap().expose_secret(),
        "smtp-env"
    );
    assert_eq!(c.schedule.timezone().name(), "Europe/Stockholm");
    assert_eq!(c.report.tenant_label.as_deref(), Some("contoso"));
}

/// `section.key` pairs mentioned in a TOML-ish text, commented out or not.
fn keys_in_example(text: &str) -> Vec<String> {
    let mut section = String::new();
    let mut keys = Vec::new();
    for line in text.lines() {
        let line = line.trim().trim_start_matches('#').trim();
        if let Some(rest) = line.strip_prefix('[') {
            if let Some(name) = rest.split(']').next() {
                section = name.to_string();
            }
        } else if let Some((key, _)) = line.split_once(" = ") {
            if !key.contains(' ') {
                keys.push(format!("{section}.{key}"));
            }
        }
    }
    keys
}

#[test]
fn example_and_docs_cover_every_key() {
    let example = std::fs::read_to_string(repo_file("idrecon.example.toml")).unwrap();
    let in_example = keys_in_example(&example);
    let docs = std::fs::read_to_string(repo_file("docs/configuration.md")).unwrap();
    let keys = all_keys();
    assert!(keys.len() >= 49, "{} keys", keys.len());
    for key in &keys {
        assert!(in_example.contains(key), "idrecon.example.toml lacks {key}");
        let (section, name) = key.split_once('.').unwrap();
        let docs_section = docs
            .split(&format!("### `[{section}]`"))
            .nth(1)
            .unwrap_or_else(|| panic!("docs lack section [{section}]"));
        let docs_section = docs_section.split("\n### ").next().unwrap();
        assert!(
            docs_section.contains(&format!("| `{name}` |")),
            "docs/configuration.md lacks {key}"
        );
    }
    for key in &in_example {
        assert!(keys.contains(key), "example mentions unknown key {key}");
    }
}
