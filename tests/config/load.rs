//! Loading and validating the configuration: TOML, env overrides, `*_file`
//! secrets, defaults and key-named errors.

use idrecon::config::{
    AzureCredential, Config, ConfigError, FlowSourceKind, MailTransport, SendPolicy,
};
use idrecon::model::{FlowMatchRule, IfsMatchRule};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::path::Path;

/// A complete, valid configuration using every section.
pub(crate) const FULL: &str = r#"
[store]
url = "sqlite://test.db"

[azure]
tenant_id = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
client_secret = "azure-inline-secret"
login_url = "https://login.microsoftonline.com"
graph_url = "https://graph.microsoft.com"
group_id = "0f0f0f0f-1111-2222-3333-444444444444"
include_guests = true

[ifs]
url = "https://ifs.example.com"
issuer_url = "https://ifs.example.com/auth/realms/prod"
client_id = "NC_Flow_Reconciler"
client_secret = "ifs-inline-secret"
users_path = "main/ifsapplications/projection/v1/UserHandling.svc/Users"
directory_id_field = "WebUser"
email_field = "Email"
page_size = 500

[flow]
source = "http"
url = "https://flow.example.com/idrecon"
username = "svc_idrecon"
password = "flow-inline-secret"
case_insensitive_ids = false

[matching]
case_sensitive = true
ifs_rules = ["mail", "upn"]
flow_rules = ["ifs_directory_id", "email"]

[fix]
enabled = true
max_changes = 40
max_change_percent = 7.5
deactivate_orphans = true

[schedule]
cron = "30 1 * * 1-5"
timezone = "Europe/Stockholm"

[report]
send = "always"
to = ["iam-admins@contoso.com", "Jane Roe <jane@contoso.com>"]
from = "idrecon@contoso.com"
transport = "smtp"
smtp_url = "smtp://mail.contoso.com:587?tls=required"
smtp_username = "idrecon"
smtp_password = "smtp-inline-secret"

[server]
listen = "127.0.0.1:9464"
"#;

/// Only what is required.
pub(crate) const MINIMAL: &str = r#"
[azure]
tenant_id = "fabrikam.onmicrosoft.com"
client_id = "app"
client_secret = "s"
[ifs]
url = "https://ifs.example.com"
issuer_url = "https://ifs.example.com/auth/realms/prod"
client_id = "c"
client_secret = "s"
[flow]
url = "https://flow.example.com/idrecon"
username = "u"
password = "p"
"#;

fn no_env() -> HashMap<String, String> {
    HashMap::new()
}

pub(crate) fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, &no_env(), Path::new("/nonexistent-base"))
}

fn parse_env(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, &env(vars), Path::new("/nonexistent-base"))
}

/// FULL with `section.key` set to `value` (a TOML value) or removed (`None`).
fn full_with(key: &str, value: Option<&str>) -> String {
    let mut table: toml::Table = toml::from_str(FULL).unwrap();
    let (section, name) = key.split_once('.').unwrap();
    let section_table = table
        .entry(section.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap();
    match value {
        Some(v) => {
            let parsed: toml::Table = toml::from_str(&format!("v = {v}")).unwrap();
            section_table.insert(name.to_string(), parsed["v"].clone());
        }
        None => {
            section_table.remove(name);
        }
    }
    toml::to_string(&table).unwrap()
}

pub(crate) fn expect_invalid(result: Result<Config, ConfigError>, key: &str, needle: &str) {
    match result {
        Err(ConfigError::Invalid {
            key: got_key,
            message,
        }) => {
            assert_eq!(got_key, key, "wrong key; message: {message}");
            assert!(
                message.contains(needle),
                "message for {key} should contain {needle:?}: {message}"
            );
        }
        Err(other) => panic!("expected Invalid for {key}, got {other}"),
        Ok(_) => panic!("expected an error for {key}, config was accepted"),
    }
}

#[test]
fn full_config_parses_with_every_value() {
    let c = parse(FULL).unwrap();
    assert_eq!(c.store.url, "sqlite://test.db");
    assert_eq!(c.azure.tenant_id, "contoso.onmicrosoft.com");
    assert_eq!(c.azure.client_id, "11111111-2222-3333-4444-555555555555");
    match &c.azure.credential {
        AzureCredential::Secret(s) => assert_eq!(s.expose_secret(), "azure-inline-secret"),
        other => panic!("expected a secret, got {other:?}"),
    }
    assert_eq!(
        c.azure.login_url.as_str(),
        "https://login.microsoftonline.com/"
    );
    assert_eq!(c.azure.graph_url.host_str(), Some("graph.microsoft.com"));
    assert_eq!(
        c.azure.group_id.as_deref(),
        Some("0f0f0f0f-1111-2222-3333-444444444444")
    );
    assert!(c.azure.include_guests);
    assert!(!c.azure.allow_insecure_http);
    assert_eq!(c.ifs.url.host_str(), Some("ifs.example.com"));
    assert_eq!(c.ifs.issuer_url.path(), "/auth/realms/prod");
    assert_eq!(c.ifs.client_secret.expose_secret(), "ifs-inline-secret");
    assert_eq!(c.ifs.directory_id_field, "WebUser");
    assert_eq!(c.ifs.email_field.as_deref(), Some("Email"));
    assert_eq!(c.ifs.page_size, 500);
    assert_eq!(c.flow.source, FlowSourceKind::Http);
    assert_eq!(c.flow.username.as_deref(), Some("svc_idrecon"));
    assert_eq!(
        c.flow.password.as_ref().unwrap().expose_secret(),
        "flow-inline-secret"
    );
    assert!(!c.flow.case_insensitive_ids);
    assert!(c.matching.case_sensitive);
    assert_eq!(
        c.matching.ifs_rules,
        vec![IfsMatchRule::Mail, IfsMatchRule::Upn]
    );
    assert_eq!(
        c.matching.flow_rules,
        vec![FlowMatchRule::IfsDirectoryId, FlowMatchRule::Email]
    );
    assert!(c.fix.enabled && c.fix.deactivate_orphans);
    assert_eq!(c.fix.max_changes, 40);
    assert_eq!(c.fix.max_change_percent, 7.5);
    assert_eq!(c.schedule.expression(), "30 1 * * 1-5");
    assert_eq!(c.schedule.timezone().name(), "Europe/Stockholm");
    assert_eq!(c.report.send, SendPolicy::Always);
    assert_eq!(c.report.to.len(), 2);
    assert_eq!(c.report.from.as_deref(), Some("idrecon@contoso.com"));
    assert_eq!(c.report.transport, MailTransport::Smtp);
    assert_eq!(
        c.report.smtp_password.as_ref().unwrap().expose_secret(),
        "smtp-inline-secret"
    );
    assert_eq!(c.report.tenant_label.as_deref(), Some("contoso"));
    assert_eq!(c.server.listen, Some("127.0.0.1:9464".parse().unwrap()));
}

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.store.url, "sqlite://idrecon.db");
    assert_eq!(
        c.azure.login_url.as_str(),
        "https://login.microsoftonline.com/"
    );
    assert_eq!(c.azure.graph_url.as_str(), "https://graph.microsoft.com/");
    assert_eq!(c.azure.group_id, None);
    assert!(!c.azure.include_guests);
    assert_eq!(
        c.ifs.users_path,
        "main/ifsapplications/projection/v1/UserHandling.svc/Users"
    );
    assert_eq!(c.ifs.directory_id_field, "WebUser");
    assert_eq!(c.ifs.email_field, None);
    assert_eq!(c.ifs.page_size, 1000);
    assert_eq!(c.flow.source, FlowSourceKind::Http);
    assert!(c.flow.case_insensitive_ids);
    assert!(!c.matching.case_sensitive);
    assert_eq!(c.matching.ifs_rules, IfsMatchRule::DEFAULT_ORDER.to_vec());
    assert_eq!(c.matching.flow_rules, FlowMatchRule::DEFAULT_ORDER.to_vec());
    assert!(!c.fix.enabled);
    assert_eq!(c.fix.max_changes, 25);
    assert_eq!(c.fix.max_change_percent, 5.0);
    assert_eq!(c.schedule.expression(), "0 2 * * *");
    assert_eq!(c.schedule.timezone().name(), "UTC");
    assert_eq!(c.report.send, SendPolicy::Never, "no recipients: no mail");
    assert!(c.report.to.is_empty());
    assert_eq!(c.report.transport, MailTransport::Smtp);
    assert_eq!(c.report.tenant_label.as_deref(), Some("fabrikam"));
    assert_eq!(c.server.listen, None);
}

#[test]
fn recipients_alone_turn_on_findings_mail() {
    let text = format!(
        "{MINIMAL}\n[report]\nto = [\"a@x.com\"]\nfrom = \"b@x.com\"\ntransport = \"graph\"\n"
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.report.send, SendPolicy::OnFindings);
    assert_eq!(c.report.transport, MailTransport::Graph);
    assert!(c.report.smtp_url.is_none());
}

#[test]
fn each_invalid_or_missing_key_is_named() {
    // (key to change, new TOML value or None to remove, expected error key, message part)
    let cases: &[(&str, Option<&str>, &str, &str)] = &[
        ("azure.tenant_id", None, "azure.tenant_id", "is required"),
        (
            "azure.tenant_id",
            Some("\"contoso/../x\""),
            "azure.tenant_id",
            "tenant ID",
        ),
        (
            "azure.client_id",
            Some("\"\""),
            "azure.client_id",
            "is required",
        ),
        (
            "azure.client_secret",
            None,
            "azure.client_secret",
            "credential is required",
        ),
        (
            "azure.include_guests",
            Some("\"yes\""),
            "azure.include_guests",
            "expected true or false, found string",
        ),
        (
            "azure.login_url",
            Some("\"http://login.example.com\""),
            "azure.login_url",
            "http:// is only allowed for loopback hosts unless azure.allow_insecure_http = true",
        ),
        (
            "azure.graph_url",
            Some("\"https://u:pw@graph.example.com\""),
            "azure.graph_url",
            "must not contain a user name or password",
        ),
        (
            "ifs.url",
            Some("\"ftp://ifs.example.com\""),
            "ifs.url",
            "https://",
        ),
        (
            "ifs.issuer_url",
            Some("\"not a url\""),
            "ifs.issuer_url",
            "not a URL",
        ),
        (
            "ifs.client_secret",
            None,
            "ifs.client_secret",
            "is required",
        ),
        (
            "ifs.page_size",
            Some("0"),
            "ifs.page_size",
            "between 1 and 100000",
        ),
        (
            "ifs.directory_id_field",
            Some("\"WebUser,Password\""),
            "ifs.directory_id_field",
            "OData property",
        ),
        (
            "ifs.email_field",
            Some("\"e mail\""),
            "ifs.email_field",
            "OData property",
        ),
        (
            "ifs.users_path",
            Some("\"https://other/Users\""),
            "ifs.users_path",
            "relative to ifs.url",
        ),
        (
            "flow.source",
            Some("\"ldap\""),
            "flow.source",
            "\"http\" or \"csv\"",
        ),
        (
            "flow.url",
            None,
            "flow.url",
            "required when flow.source = \"http\"",
        ),
        ("flow.username", None, "flow.username", "required"),
        ("flow.password", None, "flow.password", "required"),
        (
            "matching.ifs_rules",
            Some("[\"upn\", \"bogus\"]"),
            "matching.ifs_rules",
            "unknown rule \"bogus\"",
        ),
        (
            "matching.ifs_rules",
            Some("[\"upn\", \"upn\"]"),
            "matching.ifs_rules",
            "listed twice",
        ),
        (
            "matching.flow_rules",
            Some("[]"),
            "matching.flow_rules",
            "at least one rule",
        ),
        (
            "matching.flow_rules",
            Some("\"upn\""),
            "matching.flow_rules",
            "expected a list of strings",
        ),
        (
            "fix.max_changes",
            Some("-1"),
            "fix.max_changes",
            "between 0 and",
        ),
        (
            "fix.max_changes",
            Some("\"ten\""),
            "fix.max_changes",
            "expected an integer, found string",
        ),
        (
            "fix.max_change_percent",
            Some("150.0"),
            "fix.max_change_percent",
            "must be between 0 and 100",
        ),
        (
            "fix.max_change_percent",
            Some("nan"),
            "fix.max_change_percent",
            "must be between 0 and 100",
        ),
        (
            "schedule.cron",
            Some("\"0 2 * *\""),
            "schedule.cron",
            "5-field crontab",
        ),
        (
            "schedule.cron",
            Some("\"0 0 2 * * *\""),
            "schedule.cron",
            "5-field crontab",
        ),
        (
            "schedule.cron",
            Some("\"0 25 * * *\""),
            "schedule.cron",
            "5-field crontab",
        ),
        (
            "schedule.timezone",
            Some("\"Mars/Olympus\""),
            "schedule.timezone",
            "IANA time zone",
        ),
        (
            "report.send",
            Some("\"sometimes\""),
            "report.send",
            "always, on_findings, on_change, never",
        ),
        (
            "report.to",
            Some("[\"not an address\"]"),
            "report.to",
            "not an e-mail address",
        ),
        (
            "report.to",
            Some("[]"),
            "report.to",
            "required unless report.send = \"never\"",
        ),
        (
            "report.from",
            None,
            "report.from",
            "required unless report.send",
        ),
        (
            "report.from",
            Some("\"nobody\""),
            "report.from",
            "not an e-mail address",
        ),
        (
            "report.transport",
            Some("\"pigeon\""),
            "report.transport",
            "\"smtp\" or \"graph\"",
        ),
        (
            "report.smtp_url",
            None,
            "report.smtp_url",
            "required when report.transport = \"smtp\"",
        ),
        (
            "report.smtp_url",
            Some("\"smtp://u:pw@mail.contoso.com?tls=required\""),
            "report.smtp_url",
            "must not contain a password",
        ),
        (
            "report.smtp_url",
            Some("\"smtp://mail.contoso.com:25?tls=none\""),
            "report.smtp_url",
            "may go unencrypted",
        ),
        (
            "report.smtp_url",
            Some("\"https://mail.contoso.com\""),
            "report.smtp_url",
            "smtp:// or smtps://",
        ),
        (
            "report.smtp_password",
            None,
            "report.smtp_password",
            "required when report.smtp_username is set",
        ),
        (
            "store.url",
            Some("\"postgres://db/idrecon\""),
            "store.url",
            "SQLite URL",
        ),
        (
            "store.url",
            Some("\"sqlite://\""),
            "store.url",
            "no file path",
        ),
        (
            "server.listen",
            Some("\"localhost\""),
            "server.listen",
            "address:port",
        ),
        (
            "azure.tenantid",
            Some("\"x\""),
            "azure.tenantid",
            "unknown key",
        ),
        (
            "azure.Tenant_ID",
            Some("\"x\""),
            "azure.Tenant_ID",
            "did you mean `tenant_id`",
        ),
        ("bogus.key", Some("1"), "bogus", "unknown section"),
    ];
    assert!(cases.len() >= 15);
    for (key, value, err_key, needle) in cases {
        let text = full_with(key, *value);
        expect_invalid(parse(&text), err_key, needle);
    }
}

#[test]
fn required_sections_are_named_when_missing() {
    for section in ["azure", "ifs", "flow"] {
        let mut table: toml::Table = toml::from_str(FULL).unwrap();
        table.remove(section);
        expect_invalid(
            parse(&toml::to_string(&table).unwrap()),
            section,
            "required section",
        );
    }
}

#[test]
fn a_section_that_is_not_a_table_is_refused() {
    let text = format!("fix = 5\n{MINIMAL}");
    expect_invalid(parse(&text), "fix", "must be a table");
}

#[test]
fn csv_flow_source_needs_only_a_path_resolved_against_base_dir() {
    let text = MINIMAL.replace(
        "[flow]\nurl = \"https://flow.example.com/idrecon\"\nusername = \"u\"\npassword = \"p\"",
        "[flow]\nsource = \"csv\"\ncsv_path = \"exports/flow-users.csv\"",
    );
    let c = Config::from_toml_str(&text, &no_env(), Path::new("/etc/idrecon")).unwrap();
    assert_eq!(c.flow.source, FlowSourceKind::Csv);
    assert_eq!(
        c.flow.csv_path.as_deref(),
        Some(Path::new("/etc/idrecon/exports/flow-users.csv"))
    );
    assert!(c.flow.url.is_none() && c.flow.password.is_none());

    let absolute = text.replace("exports/flow-users.csv", "/data/flow.csv");
    let c = Config::from_toml_str(&absolute, &no_env(), Path::new("/etc/idrecon")).unwrap();
    assert_eq!(
        c.flow.csv_path.as_deref(),
        Some(Path::new("/data/flow.csv"))
    );

    let missing = text.replace("csv_path = \"exports/flow-users.csv\"", "");
    expect_invalid(
        parse(&missing),
        "flow.csv_path",
        "required when flow.source = \"csv\"",
    );
}

#[test]
fn invalid_toml_reports_line_and_column() {
    let text = "[store]\nurl = \"sqlite://x.db\"\n[azure\ntenant_id = 1\n";
    match parse(text) {
        Err(ConfigError::Parse {
            origin,
            line,
            column,
            message,
        }) => {
            assert_eq!(origin, "<config>");
            assert_eq!(line, 3, "{message}");
            assert!(column >= 1);
            let shown = parse(text).unwrap_err().to_string();
            assert!(shown.starts_with("<config>:3:"), "{shown}");
            assert!(!shown.contains('\n'), "one line: {shown}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

// ----- environment overrides -----

#[test]
fn env_overrides_strings_numbers_bools_lists_and_secrets() {
    let c = parse_env(
        FULL,
        &[
            ("IDRECON__AZURE__TENANT_ID", "fabrikam.onmicrosoft.com"),
            ("IDRECON__AZURE__CLIENT_SECRET", "azure-from-env"),
            ("IDRECON__FIX__MAX_CHANGES", "10"),
            ("IDRECON__FIX__MAX_CHANGE_PERCENT", "2.5"),
            ("IDRECON__FIX__ENABLED", "false"),
            ("idrecon__azure__include_guests", "0"),
            ("IDRECON__REPORT__TO", "a@x.com, b@y.com"),
            ("IDRECON__MATCHING__IFS_RULES", "object_id,upn"),
            ("IDRECON__SERVER__LISTEN", "[::1]:9000"),
            // unrelated variables are ignored
            ("IDRECON_CONFIG", "/somewhere.toml"),
            ("PATH", "/usr/bin"),
        ],
    )
    .unwrap();
    assert_eq!(c.azure.tenant_id, "fabrikam.onmicrosoft.com");
    assert_eq!(c.report.tenant_label.as_deref(), Some("fabrikam"));
    match &c.azure.credential {
        AzureCredential::Secret(s) => assert_eq!(s.expose_secret(), "azure-from-env"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.fix.max_changes, 10);
    assert_eq!(c.fix.max_change_percent, 2.5);
    assert!(!c.fix.enabled);
    assert!(!c.azure.include_guests);
    assert_eq!(
        c.report.to,
        vec!["a@x.com".to_string(), "b@y.com".to_string()]
    );
    assert_eq!(
        c.matching.ifs_rules,
        vec![IfsMatchRule::ObjectId, IfsMatchRule::Upn]
    );
    assert_eq!(c.server.listen, Some("[::1]:9000".parse().unwrap()));
}

#[test]
fn env_alone_fills_an_empty_file() {
    let c = parse_env(
        "",
        &[
            ("IDRECON__AZURE__TENANT_ID", "t1"),
            ("IDRECON__AZURE__CLIENT_ID", "c1"),
            ("IDRECON__AZURE__CLIENT_SECRET", "s1"),
            ("IDRECON__IFS__URL", "https://ifs.example.com"),
            (
                "IDRECON__IFS__ISSUER_URL",
                "https://ifs.example.com/auth/realms/x",
            ),
            ("IDRECON__IFS__CLIENT_ID", "c2"),
            ("IDRECON__IFS__CLIENT_SECRET", "s2"),
            ("IDRECON__FLOW__SOURCE", "csv"),
            ("IDRECON__FLOW__CSV_PATH", "flow.csv"),
        ],
    )
    .unwrap();
    assert_eq!(c.azure.tenant_id, "t1");
    assert_eq!(c.flow.source, FlowSourceKind::Csv);
}

#[test]
fn bad_env_values_name_key_and_variable() {
    expect_invalid(
        parse_env(FULL, &[("IDRECON__FIX__MAX_CHANGES", "ten")]),
        "fix.max_changes",
        "expected an integer, got \"ten\" (from IDRECON__FIX__MAX_CHANGES)",
    );
    expect_invalid(
        parse_env(FULL, &[("IDRECON__FIX__ENABLED", "maybe")]),
        "fix.enabled",
        "expected true or false",
    );
    expect_invalid(
        parse_env(FULL, &[("IDRECON__FIX__MAX_CHANGE_PERCENT", "inf")]),
        "fix.max_change_percent",
        "expected a number",
    );
    // Valid type, invalid value: the validation error says where it came from.
    expect_invalid(
        parse_env(FULL, &[("IDRECON__SCHEDULE__TIMEZONE", "Nowhere/City")]),
        "schedule.timezone",
        "set by IDRECON__SCHEDULE__TIMEZONE",
    );
}

#[test]
fn unknown_env_keys_are_errors_naming_them() {
    expect_invalid(
        parse_env(FULL, &[("IDRECON__AZURE__CLIENT_SECRIT", "x")]),
        "IDRECON__AZURE__CLIENT_SECRIT",
        "unknown configuration key `azure.client_secrit`",
    );
    expect_invalid(
        parse_env(FULL, &[("IDRECON__NOPE__KEY", "x")]),
        "IDRECON__NOPE__KEY",
        "unknown configuration key",
    );
    expect_invalid(
        parse_env(FULL, &[("IDRECON__AZURE", "x")]),
        "IDRECON__AZURE",
        "IDRECON__SECTION__KEY",
    );
}

#[test]
fn empty_env_value_unsets_an_optional_key() {
    let c = parse_env(FULL, &[("IDRECON__AZURE__GROUP_ID", "")]).unwrap();
    assert_eq!(c.azure.group_id, None);
}

// ----- secrets from files -----

#[test]
fn secret_files_are_read_relative_to_the_config_file_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/aad"), "aad-from-file\n").unwrap();
    std::fs::write(dir.path().join("secrets/ifs"), "ifs-from-file\r\n").unwrap();
    std::fs::write(dir.path().join("secrets/flow"), "  flow with spaces  \n").unwrap();
    std::fs::write(dir.path().join("secrets/smtp"), "smtp-from-file").unwrap();
    let text = FULL
        .replace(
            "client_secret = \"azure-inline-secret\"",
            "client_secret_file = \"secrets/aad\"",
        )
        .replace(
            "client_secret = \"ifs-inline-secret\"",
            "client_secret_file = \"secrets/ifs\"",
        )
        .replace(
            "password = \"flow-inline-secret\"",
            "password_file = \"secrets/flow\"",
        )
        .replace(
            "smtp_password = \"smtp-inline-secret\"",
            &format!(
                "smtp_password_file = \"{}\"",
                dir.path().join("secrets/smtp").display()
            ),
        );
    let path = dir.path().join("idrecon.toml");
    std::fs::write(&path, text).unwrap();
    let c = Config::load(&path, &no_env()).unwrap();
    match &c.azure.credential {
        AzureCredential::Secret(s) => assert_eq!(s.expose_secret(), "aad-from-file"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.ifs.client_secret.expose_secret(), "ifs-from-file");
    assert_eq!(
        c.flow.password.as_ref().unwrap().expose_secret(),
        "  flow with spaces  "
    );
    assert_eq!(
        c.report.smtp_password.as_ref().unwrap().expose_secret(),
        "smtp-from-file"
    );
}

#[test]
fn unreadable_or_empty_secret_files_name_key_and_path_but_not_content() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("does-not-exist");
    let text = FULL.replace(
        "client_secret = \"ifs-inline-secret\"",
        &format!("client_secret_file = \"{}\"", missing.display()),
    );
    let err = parse(&text).unwrap_err();
    assert_eq!(err.key(), Some("ifs.client_secret_file"));
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    // Not UTF-8: unreadable as text; the error must not echo the bytes.
    let binary = dir.path().join("binary");
    std::fs::write(&binary, b"topsecret\xff\xfe").unwrap();
    let text = FULL.replace(
        "password = \"flow-inline-secret\"",
        &format!("password_file = \"{}\"", binary.display()),
    );
    let err = parse(&text).unwrap_err();
    assert_eq!(err.key(), Some("flow.password_file"));
    assert!(!err.to_string().contains("topsecret"), "{err}");

    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let text = FULL.replace(
        "client_secret = \"azure-inline-secret\"",
        &format!("client_secret_file = \"{}\"", empty.display()),
    );
    expect_invalid(parse(&text), "azure.client_secret_file", "is empty");
}

#[test]
fn value_and_file_together_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s");
    std::fs::write(&file, "x").unwrap();
    let file = file.display().to_string();
    let cases = [
        ("ifs.client_secret_file", "ifs.client_secret"),
        ("flow.password_file", "flow.password"),
        ("report.smtp_password_file", "report.smtp_password"),
        ("azure.client_secret_file", "azure.client_secret"),
        ("azure.certificate_file", "azure.client_secret"),
    ];
    for (file_key, value_key) in cases {
        let text = full_with(file_key, Some(&format!("{file:?}")));
        expect_invalid(
            parse(&text),
            file_key,
            &format!("cannot be combined with {value_key}"),
        );
    }
    // A file-based secret in the file plus the inline one from the environment.
    let text = full_with("ifs.client_secret", None);
    let text = text.replace("[ifs]", &format!("[ifs]\nclient_secret_file = {file:?}"));
    expect_invalid(
        parse_env(&text, &[("IDRECON__IFS__CLIENT_SECRET", "y")]),
        "ifs.client_secret_file",
        "cannot be combined",
    );
}

#[test]
fn certificate_credential_needs_a_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.pem"), "-----BEGIN PRIVATE KEY-----\n").unwrap();
    let text = FULL.replace(
        "client_secret = \"azure-inline-secret\"",
        "certificate_file = \"app.pem\"",
    );
    let c = Config::from_toml_str(&text, &no_env(), dir.path()).unwrap();
    match &c.azure.credential {
        AzureCredential::Certificate(p) => assert_eq!(p, &dir.path().join("app.pem")),
        other => panic!("{other:?}"),
    }
    let err = Config::from_toml_str(&text, &no_env(), Path::new("/nonexistent")).unwrap_err();
    assert_eq!(err.key(), Some("azure.certificate_file"));
    assert!(err.to_string().contains("/nonexistent/app.pem"), "{err}");
}

// ----- http:// policy -----

#[test]
fn http_is_allowed_for_loopback_hosts_only() {
    for (key, url) in [
        ("azure.login_url", "http://127.0.0.1:8080"),
        ("azure.graph_url", "http://127.8.9.10/graph"),
        ("ifs.url", "http://localhost:9000"),
        ("ifs.issuer_url", "http://LOCALHOST/auth/realms/x"),
        ("flow.url", "http://[::1]:7000/idrecon"),
        ("report.smtp_url", "smtp://127.0.0.1:2525"),
        ("report.smtp_url", "smtp://[::1]:2525"),
        ("report.smtp_url", "smtp://localhost:2525"),
    ] {
        let text = full_with(key, Some(&format!("{url:?}")));
        parse(&text).unwrap_or_else(|e| panic!("{key} = {url} should be accepted: {e}"));
    }
    for (key, url) in [
        ("azure.login_url", "http://login.example.com"),
        ("ifs.url", "http://10.0.0.1:9000"),
        ("ifs.issuer_url", "http://ifs.example.com/auth"),
        ("flow.url", "http://[2001:db8::1]/idrecon"),
        ("flow.url", "http://localhost.example.com/idrecon"),
    ] {
        let section = key.split('.').next().unwrap();
        let text = full_with(key, Some(&format!("{url:?}")));
        expect_invalid(
            parse(&text),
            key,
            &format!("unless {section}.allow_insecure_http = true"),
        );
        // ... and allowed with the section's flag.
        let allowed = toml::to_string(&{
            let mut t: toml::Table = toml::from_str(&text).unwrap();
            t[section]
                .as_table_mut()
                .unwrap()
                .insert("allow_insecure_http".into(), toml::Value::Boolean(true));
            t
        })
        .unwrap();
        let c = parse(&allowed).unwrap_or_else(|e| panic!("{key} with flag: {e}"));
        assert_eq!(c.flow.allow_insecure_http, section == "flow");
        assert_eq!(c.ifs.allow_insecure_http, section == "ifs");
        assert_eq!(c.azure.allow_insecure_http, section == "azure");
    }
    // SMTP that may go unencrypted to a remote relay needs
    // report.allow_insecure_http; without `tls`, STARTTLS is required.
    parse(&full_with(
        "report.smtp_url",
        Some("\"smtp://relay.contoso.com:587\""),
    ))
    .unwrap();
    let text = full_with(
        "report.smtp_url",
        Some("\"smtp://relay.contoso.com:25?tls=opportunistic\""),
    );
    expect_invalid(
        parse(&text),
        "report.smtp_url",
        "report.allow_insecure_http",
    );
    let with_flag = text.replace("[report]", "[report]\nallow_insecure_http = true");
    parse(&with_flag).unwrap();
    // Implicit TLS is always fine.
    parse(&full_with(
        "report.smtp_url",
        Some("\"smtps://relay.contoso.com\""),
    ))
    .unwrap();
}

// ----- secrets never in Debug -----

#[test]
fn debug_output_never_shows_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flow-secret"), "flow-file-secret-value\n").unwrap();
    let text = FULL.replace(
        "password = \"flow-inline-secret\"",
        "password_file = \"flow-secret\"",
    );
    let c = Config::from_toml_str(
        &text,
        &env(&[("IDRECON__IFS__CLIENT_SECRET", "ifs-env-secret-value")]),
        dir.path(),
    )
    .unwrap();
    let debug = format!("{c:?}");
    let pretty = format!("{c:#?}");
    for secret in [
        "azure-inline-secret",
        "ifs-env-secret-value",
        "flow-file-secret-value",
        "smtp-inline-secret",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked in Debug");
        assert!(!pretty.contains(secret), "{secret} leaked in pretty Debug");
    }
    assert!(debug.contains("REDACTED"));
    // Non-secret values are still visible, so the check above is meaningful.
    assert!(debug.contains("svc_idrecon"));
}

// ----- loading from disk -----

#[test]
fn missing_file_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let err = Config::load(&path, &env(&[("HOME", "/root")])).unwrap_err();
    assert!(matches!(err, ConfigError::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn missing_file_with_env_vars_uses_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let complete = env(&[
        ("IDRECON__AZURE__TENANT_ID", "t1"),
        ("IDRECON__AZURE__CLIENT_ID", "c1"),
        ("IDRECON__AZURE__CLIENT_SECRET", "s1"),
        ("IDRECON__IFS__URL", "https://ifs.example.com"),
        (
            "IDRECON__IFS__ISSUER_URL",
            "https://ifs.example.com/auth/realms/x",
        ),
        ("IDRECON__IFS__CLIENT_ID", "c2"),
        ("IDRECON__IFS__CLIENT_SECRET", "s2"),
        ("IDRECON__FLOW__URL", "https://flow.example.com/idrecon"),
        ("IDRECON__FLOW__USERNAME", "u"),
        ("IDRECON__FLOW__PASSWORD", "p"),
    ]);
    let c = Config::load(&path, &complete).unwrap();
    assert_eq!(c.azure.client_id, "c1");

    let partial = env(&[("IDRECON__AZURE__CLIENT_SECRET", "s1")]);
    let err = Config::load(&path, &partial).unwrap_err();
    let shown = err.to_string();
    assert!(shown.starts_with("azure"), "{shown}");
    assert!(shown.contains("not found"), "{shown}");
    assert!(shown.contains(&path.display().to_string()), "{shown}");
}

#[test]
fn unreadable_config_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    // A directory cannot be read as a file.
    let err = Config::load(dir.path(), &no_env()).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains(&dir.path().display().to_string()));
}

#[test]
fn parse_errors_from_a_file_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[azure]\ntenant_id = \n").unwrap();
    let err = Config::load(&path, &no_env()).unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{}:2:", path.display())),
        "{shown}"
    );
}

#[test]
fn standard_crontab_expressions_are_accepted() {
    for cron in [
        "0 2 * * 7",
        "0 2 * * 0",
        "*/15 * * * *",
        "0 6 1-7 * 1-5",
        "30 3 * JAN,JUL sun",
    ] {
        let text = full_with("schedule.cron", Some(&format!("{cron:?}")));
        let c = parse(&text).unwrap_or_else(|e| panic!("{cron}: {e}"));
        assert_eq!(c.schedule.expression(), cron);
    }
}
