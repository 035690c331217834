//! The report mail over a real SMTP conversation: an SMTP server (the
//! `mailin` protocol state machine on a tokio listener, port 0) receives what
//! `send_smtp` sends, and `mail-parser` takes the raw message apart.

use crate::smtp_support;

use chrono::{TimeZone, Utc};
use idrecon::config::{MailTransport, ReportConfig, SendPolicy, SmtpEndpoint};
use idrecon::mail::{send_smtp, MailError};
use idrecon::report::email::MailContent;
use idrecon::report::{Mode, Report, RunStatus, SourcesSummary, Summary, Trigger, SCHEMA_VERSION};
use mail_parser::{MessageParser, MimeHeaders, PartType};
use mailin::{AuthMechanism, Handler, Response, SessionBuilder};
use secrecy::SecretString;
use smtp_support::serve_connection;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// One message as the SMTP server received it.
#[derive(Clone, Debug, Default)]
struct Received {
    envelope_from: String,
    envelope_to: Vec<String>,
    data: Vec<u8>,
}

/// Everything the server saw, shared with the test.
#[derive(Clone, Default)]
struct Mailbox {
    messages: Arc<Mutex<Vec<Received>>>,
    logins: Arc<Mutex<Vec<(String, String)>>>,
}

/// The per-connection `mailin` handler: records the envelope and the data,
/// and accepts a login only with the configured credentials.
struct Recorder {
    mailbox: Mailbox,
    accept_login: Option<(String, String)>,
    current: Received,
}

impl Handler for Recorder {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Received {
            envelope_from: from.to_string(),
            envelope_to: to.to_vec(),
            data: Vec::new(),
        };
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let message = std::mem::take(&mut self.current);
        self.mailbox.messages.lock().unwrap().push(message);
        mailin::response::OK
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        self.mailbox
            .logins
            .lock()
            .unwrap()
            .push((user.to_string(), password.to_string()));
        match &self.accept_login {
            Some((u, p)) if u == user && p == password => mailin::response::AUTH_OK,
            _ => mailin::response::INVALID_CREDENTIALS,
        }
    }
}

/// Starts an SMTP server on 127.0.0.1:0. With `login`, it offers AUTH PLAIN
/// (over plain text: test only) and accepts just those credentials.
async fn start_smtp_server(login: Option<(&str, &str)>) -> (SocketAddr, Mailbox) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mailbox = Mailbox::default();
    let mut builder = SessionBuilder::new("test-smtp.local");
    if login.is_some() {
        builder
            .enable_auth(AuthMechanism::Plain)
            .insecure_enable_plaintext_auth();
    }
    let accept_login = login.map(|(u, p)| (u.to_string(), p.to_string()));
    let server_mailbox = mailbox.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let handler = Recorder {
                mailbox: server_mailbox.clone(),
                accept_login: accept_login.clone(),
                current: Received::default(),
            };
            let session = builder.build(peer.ip(), handler);
            tokio::spawn(serve_connection(stream, session));
        }
    });
    (addr, mailbox)
}

fn report_config(smtp_url: String) -> ReportConfig {
    ReportConfig {
        send: SendPolicy::Always,
        to: vec![
            "iam-admins@contoso.com".into(),
            "Åsa Öberg <asa.oberg@contoso.com>".into(),
        ],
        from: Some("idrecon <idrecon@contoso.com>".into()),
        transport: MailTransport::Smtp,
        smtp_url: Some(SmtpEndpoint::parse(&smtp_url).unwrap()),
        smtp_username: None,
        smtp_password: None,
        tenant_label: Some("contoso".into()),
        findings_exit_code: 2,
    }
}

fn sample_report() -> Report {
    Report {
        schema_version: SCHEMA_VERSION,
        run_id: 42,
        trigger: Trigger::Schedule,
        mode: Mode::Report,
        status: RunStatus::Completed,
        abort_reason: None,
        started_at: Utc.with_ymd_and_hms(2026, 11, 26, 2, 0, 0).unwrap(),
        finished_at: Some(Utc.with_ymd_and_hms(2026, 11, 26, 2, 0, 7).unwrap()),
        sources: SourcesSummary::default(),
        summary: Summary {
            people: 1300,
            ok: 1205,
            findings: 95,
            new: 12,
            persisting: 83,
            ..Summary::default()
        },
        advice: vec![],
        findings: vec![],
        actions: vec![],
    }
}

/// Bodies as the renderers would produce them: the HTML already escaped, a
/// line longer than 76 characters (forces soft line breaks), a text line
/// starting with a dot (SMTP dot-stuffing), non-ASCII everywhere, and a CSV
/// with CRLF record ends and a quoted field holding a bare LF.
fn sample_content() -> MailContent {
    let html = format!(
        "<!DOCTYPE html><html><body><h1>idrecon run 42 — contoso</h1>\n\
         <p>Display name: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Åsa Öberg</p>\n\
         <p>{}</p></body></html>\n",
        "a-long-line-".repeat(20)
    );
    let text = "idrecon run 42 — contoso\n\
                12 new mismatches, 95 open.\n\
                .this line starts with a dot\n\
                Åsa Öberg: flow user 'asa' should be 'asa.oberg@contoso.com'\n"
        .to_string();
    let csv = "kind,upn,display_name,detail\r\n\
               id_mismatch,asa.oberg@contoso.com,Åsa Öberg,\"two\nlines, ok\"\r\n\
               case_only,JDoe@contoso.com,\"Doe, John\",Straße\r\n"
        .to_string();
    MailContent::new(&sample_report(), "contoso", text, html, csv)
}

fn crlf_to_lf(s: &str) -> String {
    s.replace("\r\n", "\n")
}

#[tokio::test]
async fn report_mail_arrives_as_multipart_with_exact_csv_attachment() {
    let (addr, mailbox) = start_smtp_server(None).await;
    let cfg = report_config(format!("smtp://127.0.0.1:{}?tls=none", addr.port()));
    let content = sample_content();
    assert_eq!(
        content.subject,
        "idrecon: 12 new mismatches (95 open) \u{2014} contoso"
    );

    send_smtp(&cfg, &content).await.expect("mail sent");

    let messages = mailbox.messages.lock().unwrap().clone();
    assert_eq!(messages.len(), 1, "exactly one message delivered");
    let received = &messages[0];
    assert_eq!(received.envelope_from, "idrecon@contoso.com");
    assert_eq!(
        received.envelope_to,
        vec![
            "iam-admins@contoso.com".to_string(),
            "asa.oberg@contoso.com".to_string()
        ]
    );
    let raw = String::from_utf8_lossy(&received.data);
    // The subject is RFC 2047 encoded on the wire, not raw UTF-8.
    let subject_line = raw
        .lines()
        .find(|l| l.starts_with("Subject:"))
        .expect("Subject header");
    assert!(subject_line.contains("=?utf-8?"), "{subject_line}");
    assert!(
        !raw.contains("<script>"),
        "unescaped script tag on the wire"
    );

    let message = MessageParser::default()
        .parse(&received.data)
        .expect("parsable message");

    assert_eq!(message.subject(), Some(content.subject.as_str()));
    let from = message.from().and_then(|a| a.first()).expect("From");
    assert_eq!(from.address(), Some("idrecon@contoso.com"));
    assert_eq!(from.name(), Some("idrecon"));
    let to: Vec<(Option<&str>, Option<&str>)> = message
        .to()
        .expect("To")
        .iter()
        .map(|a| (a.name(), a.address()))
        .collect();
    assert_eq!(
        to,
        vec![
            (None, Some("iam-admins@contoso.com")),
            (Some("Åsa Öberg"), Some("asa.oberg@contoso.com")),
        ]
    );

    // Structure: multipart/mixed( multipart/alternative(text/plain, text/html), text/csv attachment )
    let root = message.root_part();
    assert!(
        root.is_content_type("multipart", "mixed"),
        "{:?}",
        root.content_type()
    );
    let PartType::Multipart(children) = &root.body else {
        panic!("root is not multipart")
    };
    assert_eq!(children.len(), 2);
    let alternative = message.part(children[0]).unwrap();
    assert!(alternative.is_content_type("multipart", "alternative"));
    let PartType::Multipart(alternatives) = &alternative.body else {
        panic!("alternative is not multipart")
    };
    assert_eq!(alternatives.len(), 2);
    let plain = message.part(alternatives[0]).unwrap();
    let html = message.part(alternatives[1]).unwrap();
    assert!(plain.is_content_type("text", "plain"));
    assert!(html.is_content_type("text", "html"));
    assert_eq!(
        plain.content_type().and_then(|c| c.attribute("charset")),
        Some("utf-8")
    );

    let plain_text = plain.text_contents().expect("plain text");
    assert_eq!(crlf_to_lf(plain_text), content.text);
    let html_text = html.text_contents().expect("html text");
    assert_eq!(crlf_to_lf(html_text), content.html);
    assert!(html_text.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Åsa Öberg"));

    let attachment = message.part(children[1]).unwrap();
    assert!(attachment.is_content_type("text", "csv"));
    assert_eq!(attachment.attachment_name(), Some("idrecon-run-42.csv"));
    assert_eq!(
        attachment.content_disposition().map(|d| d.ctype()),
        Some("attachment")
    );
    assert_eq!(
        attachment.contents(),
        content.csv.as_bytes(),
        "CSV byte for byte"
    );
    assert_eq!(message.attachment_count(), 1);
}

#[tokio::test]
async fn login_with_right_credentials_is_accepted() {
    let (addr, mailbox) = start_smtp_server(Some(("idrecon", "s3cr3t-Pässword"))).await;
    let mut cfg = report_config(format!("smtp://127.0.0.1:{}?tls=none", addr.port()));
    cfg.smtp_username = Some("idrecon".into());
    cfg.smtp_password = Some(SecretString::from("s3cr3t-Pässword"));

    send_smtp(&cfg, &sample_content()).await.expect("mail sent");

    assert_eq!(
        mailbox.logins.lock().unwrap().clone(),
        vec![("idrecon".to_string(), "s3cr3t-Pässword".to_string())]
    );
    assert_eq!(mailbox.messages.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn refused_login_is_a_clear_error_without_the_password() {
    let (addr, mailbox) = start_smtp_server(Some(("idrecon", "right"))).await;
    let mut cfg = report_config(format!("smtp://127.0.0.1:{}?tls=none", addr.port()));
    cfg.smtp_username = Some("idrecon".into());
    cfg.smtp_password = Some(SecretString::from("wrong-hunter2"));

    let err = send_smtp(&cfg, &sample_content()).await.unwrap_err();

    assert!(matches!(err, MailError::SmtpAuth { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("SMTP"), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{}", addr.port())),
        "{text}"
    );
    assert!(text.contains("login as \"idrecon\" failed"), "{text}");
    assert!(text.contains("535"), "{text}");
    assert!(text.contains("smtp_password"), "{text}");
    assert!(!text.contains("wrong-hunter2"), "{text}");
    assert!(!format!("{err:?}").contains("wrong-hunter2"));
    assert!(
        mailbox.messages.lock().unwrap().is_empty(),
        "nothing delivered"
    );
}

#[tokio::test]
async fn server_without_login_support_is_a_clear_auth_error() {
    let (addr, _mailbox) = start_smtp_server(None).await;
    let mut cfg = report_config(format!("smtp://localhost:{}?tls=none", addr.port()));
    cfg.smtp_username = Some("idrecon".into());
    cfg.smtp_password = Some(SecretString::from("pw"));

    let err = send_smtp(&cfg, &sample_content()).await.unwrap_err();

    assert!(matches!(err, MailError::SmtpAuth { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("localhost:{}", addr.port())),
        "{text}"
    );
    assert!(text.contains("no login method"), "{text}");
}

#[tokio::test]
async fn unreachable_server_is_an_error_naming_the_host() {
    // Bind and drop a listener: the port is then (almost surely) closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = report_config(format!("smtp://127.0.0.1:{port}?tls=none"));

    let err = send_smtp(&cfg, &sample_content()).await.unwrap_err();

    assert!(matches!(err, MailError::Smtp { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("no TLS"), "{text}");
}

#[tokio::test]
async fn password_over_clear_text_to_a_remote_host_is_refused_before_connecting() {
    let mut cfg = report_config("smtp://mail.contoso.invalid:25?tls=none".into());
    cfg.smtp_username = Some("idrecon".into());
    cfg.smtp_password = Some(SecretString::from("pw"));

    let err = send_smtp(&cfg, &sample_content()).await.unwrap_err();

    assert!(matches!(err, MailError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("unencrypted"), "{err}");
}

#[tokio::test]
async fn missing_settings_are_named() {
    let mut cfg = report_config("smtp://127.0.0.1:1?tls=none".into());
    cfg.smtp_url = None;
    let err = send_smtp(&cfg, &sample_content()).await.unwrap_err();
    assert!(err.to_string().contains("report.smtp_url"), "{err}");

    let mut cfg = report_config("smtp://127.0.0.1:1?tls=none".into());
    cfg.from = None;
    let err = send_smtp(&cfg, &sample_content()).await.unwrap_err();
    assert!(err.to_string().contains("report.from"), "{err}");

    let mut cfg = report_config("smtp://127.0.0.1:1?tls=none".into());
    cfg.to.push("not-an-address".into());
    let err = send_smtp(&cfg, &sample_content()).await.unwrap_err();
    assert!(err.to_string().contains("report.to"), "{err}");
    assert!(err.to_string().contains("not-an-address"), "{err}");
}

#[tokio::test]
async fn silent_server_times_out_with_an_error_naming_the_host() {
    // Accepts the connection but never sends the 220 greeting.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        drop(stream);
    });
    let cfg = report_config(format!("smtp://127.0.0.1:{port}?tls=none"));

    let started = std::time::Instant::now();
    let err = idrecon::mail::smtp::send_smtp_with_timeout(
        &cfg,
        &sample_content(),
        std::time::Duration::from_millis(300),
    )
    .await
    .unwrap_err();

    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let text = err.to_string();
    assert!(matches!(err, MailError::Smtp { .. }), "{err:?}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("timed out"), "{text}");
    held.abort();
}
