//! The keys added for the hardening work ([limits], [tls], [safety],
//! ifs.concurrency, ifs.token_auth_method, report.findings_exit_code,
//! server.auth_token): defaults, values from the file and the environment,
//! and bad values named by key (and variable).

use crate::load::{env, expect_invalid, FULL, MINIMAL};
use idrecon::config::{Config, ConfigError, TokenAuthMethod};
use secrecy::ExposeSecret;
use std::path::Path;
use std::time::Duration;

fn parse(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, &env(vars), Path::new("/nonexistent-base"))
}

/// MINIMAL plus `extra` TOML lines under `[section]` (MINIMAL has no
/// [limits], [tls], [safety], [report] or [server]).
fn with(section: &str, extra: &str) -> String {
    if ["ifs"].contains(&section) {
        MINIMAL.replace("[ifs]\n", &format!("[ifs]\n{extra}\n"))
    } else {
        format!("{MINIMAL}\n[{section}]\n{extra}\n")
    }
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = parse(MINIMAL, &[]).unwrap();
    assert_eq!(c.limits.max_body_bytes, 64 * 1024 * 1024);
    assert_eq!(c.limits.max_field_chars, 1024);
    assert_eq!(c.limits.max_pages, 100_000);
    assert_eq!(c.limits.fetch_deadline, Duration::from_secs(2 * 3600));
    assert_eq!(c.tls.ca_file, None);
    assert_eq!(c.safety.max_source_drop_percent, 20.0);
    assert_eq!(c.ifs.concurrency, 4);
    assert_eq!(c.ifs.token_auth_method, TokenAuthMethod::Auto);
    assert_eq!(c.report.findings_exit_code, 2);
    assert!(c.server.auth_token.is_none());
}

#[test]
fn values_from_the_file_are_read() {
    let text = format!(
        "{}\n[limits]\nmax_body_bytes = 1048576\nmax_field_chars = 200\nmax_pages = 50\n\
         fetch_deadline = \"1h 30m\"\n[safety]\nmax_source_drop_percent = 12.5\n",
        MINIMAL.replace(
            "[ifs]\n",
            "[ifs]\nconcurrency = 8\ntoken_auth_method = \"post\"\n"
        )
    );
    let text = format!(
        "{text}\n[report]\nfindings_exit_code = 0\n[server]\nauth_token = \"server-token\"\n"
    );
    let c = parse(&text, &[]).unwrap();
    assert_eq!(c.limits.max_body_bytes, 1_048_576);
    assert_eq!(c.limits.max_field_chars, 200);
    assert_eq!(c.limits.max_pages, 50);
    assert_eq!(c.limits.fetch_deadline, Duration::from_secs(90 * 60));
    assert_eq!(c.safety.max_source_drop_percent, 12.5);
    assert_eq!(c.ifs.concurrency, 8);
    assert_eq!(c.ifs.token_auth_method, TokenAuthMethod::Post);
    assert_eq!(c.report.findings_exit_code, 0);
    assert_eq!(
        c.server.auth_token.as_ref().unwrap().expose_secret(),
        "server-token"
    );
    assert!(!format!("{c:?}").contains("server-token"));
}

#[test]
fn every_new_key_can_be_set_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, test_ca_pem()).unwrap();
    let c = parse(
        MINIMAL,
        &[
            ("IDRECON__LIMITS__MAX_BODY_BYTES", "2048"),
            ("IDRECON__LIMITS__MAX_FIELD_CHARS", "64"),
            ("IDRECON__LIMITS__MAX_PAGES", "7"),
            ("IDRECON__LIMITS__FETCH_DEADLINE", "45s"),
            ("IDRECON__TLS__CA_FILE", ca.to_str().unwrap()),
            ("IDRECON__SAFETY__MAX_SOURCE_DROP_PERCENT", "5"),
            ("IDRECON__IFS__CONCURRENCY", "32"),
            ("IDRECON__IFS__TOKEN_AUTH_METHOD", "basic"),
            ("IDRECON__REPORT__FINDINGS_EXIT_CODE", "10"),
            // A token that looks like a number stays text.
            ("IDRECON__SERVER__AUTH_TOKEN", "007"),
        ],
    )
    .unwrap();
    assert_eq!(c.limits.max_body_bytes, 2048);
    assert_eq!(c.limits.max_field_chars, 64);
    assert_eq!(c.limits.max_pages, 7);
    assert_eq!(c.limits.fetch_deadline, Duration::from_secs(45));
    assert_eq!(c.tls.ca_file.as_deref(), Some(ca.as_path()));
    assert_eq!(c.safety.max_source_drop_percent, 5.0);
    assert_eq!(c.ifs.concurrency, 32);
    assert_eq!(c.ifs.token_auth_method, TokenAuthMethod::Basic);
    assert_eq!(c.report.findings_exit_code, 10);
    assert_eq!(c.server.auth_token.as_ref().unwrap().expose_secret(), "007");
}

#[test]
fn bad_values_are_named_by_key() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "limits",
            "max_body_bytes = 0",
            "limits.max_body_bytes",
            "must be between 1 and",
        ),
        (
            "limits",
            "max_body_bytes = \"64MiB\"",
            "limits.max_body_bytes",
            "expected an integer, found string",
        ),
        (
            "limits",
            "max_field_chars = 0",
            "limits.max_field_chars",
            "between 1 and 1000000",
        ),
        (
            "limits",
            "max_pages = -5",
            "limits.max_pages",
            "must be between 1 and",
        ),
        (
            "limits",
            "fetch_deadline = \"soon\"",
            "limits.fetch_deadline",
            "not a duration such as \"2h\"",
        ),
        (
            "limits",
            "fetch_deadline = \"0s\"",
            "limits.fetch_deadline",
            "longer than zero",
        ),
        (
            "limits",
            "fetch_deadline = 7200",
            "limits.fetch_deadline",
            "expected a string, found integer",
        ),
        ("limits", "max_bytes = 1", "limits.max_bytes", "unknown key"),
        (
            "safety",
            "max_source_drop_percent = 101.0",
            "safety.max_source_drop_percent",
            "between 0 and 100",
        ),
        (
            "safety",
            "max_source_drop_percent = -1",
            "safety.max_source_drop_percent",
            "between 0 and 100",
        ),
        (
            "ifs",
            "concurrency = 0",
            "ifs.concurrency",
            "between 1 and 32",
        ),
        (
            "ifs",
            "concurrency = 33",
            "ifs.concurrency",
            "between 1 and 32",
        ),
        (
            "ifs",
            "token_auth_method = \"jwt\"",
            "ifs.token_auth_method",
            "\"auto\", \"basic\" or \"post\"",
        ),
        (
            "report",
            "findings_exit_code = 256",
            "report.findings_exit_code",
            "between 0 and 255",
        ),
        (
            "tls",
            "ca_file = \"missing.pem\"",
            "tls.ca_file",
            "/nonexistent-base/missing.pem",
        ),
    ];
    for (section, line, key, needle) in cases {
        expect_invalid(parse(&with(section, line), &[]), key, needle);
    }
    for code in [1, 3, 4] {
        expect_invalid(
            parse(
                &with("report", &format!("findings_exit_code = {code}")),
                &[],
            ),
            "report.findings_exit_code",
            "1, 3 and 4 mean",
        );
    }
}

#[test]
fn bad_env_values_name_key_and_variable() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "IDRECON__LIMITS__MAX_BODY_BYTES",
            "lots",
            "limits.max_body_bytes",
            "expected an integer, got \"lots\" (from IDRECON__LIMITS__MAX_BODY_BYTES)",
        ),
        (
            "IDRECON__LIMITS__MAX_FIELD_CHARS",
            "0",
            "limits.max_field_chars",
            "(set by IDRECON__LIMITS__MAX_FIELD_CHARS)",
        ),
        (
            "IDRECON__LIMITS__MAX_PAGES",
            "1.5",
            "limits.max_pages",
            "(from IDRECON__LIMITS__MAX_PAGES)",
        ),
        (
            "IDRECON__LIMITS__FETCH_DEADLINE",
            "2 fortnights",
            "limits.fetch_deadline",
            "(set by IDRECON__LIMITS__FETCH_DEADLINE)",
        ),
        (
            "IDRECON__TLS__CA_FILE",
            "/nonexistent/ca.pem",
            "tls.ca_file",
            "(set by IDRECON__TLS__CA_FILE)",
        ),
        (
            "IDRECON__SAFETY__MAX_SOURCE_DROP_PERCENT",
            "half",
            "safety.max_source_drop_percent",
            "expected a number, got \"half\" (from IDRECON__SAFETY__MAX_SOURCE_DROP_PERCENT)",
        ),
        (
            "IDRECON__IFS__CONCURRENCY",
            "64",
            "ifs.concurrency",
            "between 1 and 32 (set by IDRECON__IFS__CONCURRENCY)",
        ),
        (
            "IDRECON__IFS__TOKEN_AUTH_METHOD",
            "Basic",
            "ifs.token_auth_method",
            "(set by IDRECON__IFS__TOKEN_AUTH_METHOD)",
        ),
        (
            "IDRECON__REPORT__FINDINGS_EXIT_CODE",
            "3",
            "report.findings_exit_code",
            "(set by IDRECON__REPORT__FINDINGS_EXIT_CODE)",
        ),
    ];
    for (var, value, key, needle) in cases {
        expect_invalid(parse(MINIMAL, &[(var, value)]), key, needle);
    }
    expect_invalid(
        parse(MINIMAL, &[("IDRECON__LIMITS__MAX_BYTES", "1")]),
        "IDRECON__LIMITS__MAX_BYTES",
        "unknown configuration key `limits.max_bytes`",
    );
}

#[test]
fn auth_token_comes_from_a_file_relative_to_the_config_but_not_with_an_inline_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "token-from-file\n").unwrap();
    let text = with("server", "auth_token_file = \"token\"");
    let c = Config::from_toml_str(&text, &env(&[]), dir.path()).unwrap();
    assert_eq!(
        c.server.auth_token.as_ref().unwrap().expose_secret(),
        "token-from-file"
    );
    let both = with(
        "server",
        "auth_token_file = \"token\"\nauth_token = \"inline\"",
    );
    let err = Config::from_toml_str(&both, &env(&[]), dir.path()).unwrap_err();
    assert_eq!(err.key(), Some("server.auth_token_file"), "{err}");
    assert!(err
        .to_string()
        .contains("cannot be combined with server.auth_token"));
    std::fs::write(dir.path().join("token"), "\n").unwrap();
    let err = Config::from_toml_str(&text, &env(&[]), dir.path()).unwrap_err();
    assert_eq!(err.key(), Some("server.auth_token_file"), "{err}");
    assert!(err.to_string().contains("is empty"), "{err}");
}

/// A self-signed CA certificate in PEM.
fn test_ca_pem() -> String {
    rcgen::generate_simple_self_signed(vec!["idrecon-test-ca".to_string()])
        .unwrap()
        .cert
        .pem()
}

#[test]
fn ca_file_is_resolved_against_the_config_directory_and_must_hold_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    std::fs::write(dir.path().join("certs/ca.pem"), test_ca_pem()).unwrap();
    let text = with("tls", "ca_file = \"certs/ca.pem\"");
    let path = dir.path().join("idrecon.toml");
    std::fs::write(&path, &text).unwrap();
    let c = Config::load(&path, &env(&[])).unwrap();
    assert_eq!(c.tls.ca_file, Some(dir.path().join("certs/ca.pem")));

    // Readable, but not PEM.
    std::fs::write(dir.path().join("certs/ca.pem"), "just some text\n").unwrap();
    expect_invalid(
        Config::load(&path, &env(&[])),
        "tls.ca_file",
        "holds no PEM certificate",
    );
    // PEM, but a key rather than a certificate.
    std::fs::write(
        dir.path().join("certs/ca.pem"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    expect_invalid(
        Config::load(&path, &env(&[])),
        "tls.ca_file",
        "holds no PEM certificate",
    );
    // A directory is not a readable bundle.
    let text = with("tls", "ca_file = \"certs\"");
    expect_invalid(
        Config::from_toml_str(&text, &env(&[]), dir.path()),
        "tls.ca_file",
        "cannot read CA bundle",
    );
}

#[test]
fn the_full_config_still_loads_with_the_new_sections_absent() {
    let c = parse(FULL, &[]).unwrap();
    assert_eq!(c.report.findings_exit_code, 2);
}
