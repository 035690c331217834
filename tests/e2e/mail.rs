//! Mailing a run's report end to end: Graph `sendMail` on the simulator
//! (subject, escaped HTML, CSV attachment), and an SMTP mail that fails
//! (closed port), is shown in the history and is sent with the next run.

use crate::app_support;
use crate::smtp_support;

use app_support::*;
use base64::Engine;
use idrecon::model::{AadUser, AadUserFields, IfsUser, IfsUserFields};
use idrecon::notify::{mail_run, MailOutcome};
use idrecon::report::{csv as report_csv, email};
use idrecon::sim::{MAIL_RECIPIENT, MAIL_SENDER};
use idrecon::store::{MailStatus, Store};
use idrecon::worker::graph_sender;
use mailin::{Handler, Response, SessionBuilder};
use smtp_support::serve_connection;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// A display name HTML must escape.
const TRICKY_NAME: &str = "<b>Bobby & \"Tables\"</b> O'Brien";

/// Adds a person whose display name needs escaping (Azure + IFS, no Flow:
/// `missing_in_flow`, so the name is in the report).
fn add_tricky_person(app: &TestApp) {
    let upn = "bobby.tables9001@contoso.com";
    app.handle.update_azure(|users| {
        users.push(AadUser::from(AadUserFields {
            id: "0e2e0000-0000-4000-8000-0000000b0bb1".into(),
            user_principal_name: upn.into(),
            mail: Some(upn.into()),
            display_name: Some(TRICKY_NAME.into()),
            account_enabled: true,
            employee_id: None,
            on_premises_sam_account_name: None,
            user_type: Some("Member".into()),
        }))
    });
    app.handle.update_ifs(|users| {
        users.push(IfsUser::from(IfsUserFields {
            identity: "BOBBYTABLES9001".into(),
            description: Some(TRICKY_NAME.into()),
            directory_id: Some(upn.into()),
            active: true,
            email: None,
        }))
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_send_mail_carries_subject_escaped_html_and_csv() {
    let app = spawn_app(300, 4).await;
    add_tricky_person(&app);
    let report = app.report_only().await;
    assert!(report
        .findings
        .iter()
        .any(|f| f.display_name.as_deref() == Some(TRICKY_NAME)));

    let graph = graph_sender(&app.sources());
    assert!(graph.is_some());
    let outcome = mail_run(&app.config(), &app.store().await, &report, graph.as_ref()).await;
    assert_eq!(outcome, MailOutcome::Sent);

    let sent = app.handle.sent_mail_with_sender();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].sender.eq_ignore_ascii_case(MAIL_SENDER));
    let message = &sent[0].body["message"];
    let subject = message["subject"].as_str().expect("subject");
    let label = app.config().report.tenant_label.clone().unwrap_or_default();
    assert_eq!(subject, email::subject(&report, &label));
    assert!(
        subject.starts_with(&format!(
            "idrecon: {} new mismatches ({} open)",
            report.summary.new,
            report.findings.len()
        )),
        "{subject}"
    );
    assert_eq!(
        message["toRecipients"][0]["emailAddress"]["address"],
        MAIL_RECIPIENT
    );
    assert_eq!(message["body"]["contentType"], "HTML");
    let html = message["body"]["content"].as_str().expect("HTML body");
    assert!(html.contains("&lt;b&gt;Bobby &amp; "), "name escaped");
    assert!(!html.contains("<b>Bobby"), "no raw markup from data");
    assert!(!html.contains(TRICKY_NAME));

    let attachments = message["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1);
    let attachment = &attachments[0];
    assert_eq!(attachment["@odata.type"], "#microsoft.graph.fileAttachment");
    assert!(attachment["name"]
        .as_str()
        .is_some_and(|n| n.ends_with(".csv")));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(attachment["contentBytes"].as_str().expect("contentBytes"))
        .expect("valid base64");
    let csv_text = String::from_utf8(bytes).expect("UTF-8 CSV");
    assert_eq!(csv_text, report_csv::render(&report).expect("CSV renders"));
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("rows");
    assert_eq!(rows.len(), report.findings.len());
    assert!(rows.iter().any(|r| r.iter().any(|c| c == TRICKY_NAME)));

    let runs = app.store().await.list_runs(5).await.expect("runs");
    assert_eq!(runs[0].mail_status, Some(MailStatus::Sent));
    assert!(app
        .store()
        .await
        .runs_with_unsent_mail()
        .await
        .expect("unsent")
        .is_empty());
}

/// What the SMTP server received: raw DATA of each message.
#[derive(Clone, Default)]
struct Mailbox(Arc<Mutex<Vec<Vec<u8>>>>);

struct Recorder {
    mailbox: Mailbox,
    current: Vec<u8>,
}

impl Handler for Recorder {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> Response {
        self.current.clear();
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let message = std::mem::take(&mut self.current);
        self.mailbox.0.lock().expect("mailbox").push(message);
        mailin::response::OK
    }
}

/// A plain SMTP server (the `mailin` state machine) on 127.0.0.1:0.
async fn start_smtp_server() -> (SocketAddr, Mailbox) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mailbox = Mailbox::default();
    let server_mailbox = mailbox.clone();
    tokio::spawn(async move {
        let builder = SessionBuilder::new("e2e-smtp.local");
        while let Ok((stream, peer)) = listener.accept().await {
            let handler = Recorder {
                mailbox: server_mailbox.clone(),
                current: Vec::new(),
            };
            tokio::spawn(serve_connection(stream, builder.build(peer.ip(), handler)));
        }
    });
    (addr, mailbox)
}

fn smtp_overrides(port: u16) -> HashMap<String, String> {
    HashMap::from([
        ("IDRECON__REPORT__TRANSPORT".to_string(), "smtp".to_string()),
        (
            "IDRECON__REPORT__SMTP_URL".to_string(),
            format!("smtp://127.0.0.1:{port}?tls=none"),
        ),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_mail_is_recorded_and_sent_with_the_next_run() {
    let mut app = spawn_app(300, 6).await;
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    app.reconfigure(&smtp_overrides(closed));

    let first = app.report_only().await;
    let outcome = mail_run(&app.config(), &app.store().await, &first, None).await;
    assert!(matches!(outcome, MailOutcome::Failed(_)), "{outcome:?}");

    // The run is stored; the history says the mail failed, and why.
    assert_eq!(
        app.store()
            .await
            .load_report(first.run_id)
            .await
            .expect("load")
            .as_ref(),
        Some(&first)
    );
    let runs = app.store().await.list_runs(5).await.expect("runs");
    assert_eq!(runs[0].id, first.run_id);
    assert_eq!(runs[0].mail_status, Some(MailStatus::Failed));
    assert!(runs[0].mail_error.as_deref().is_some_and(|e| !e.is_empty()));
    // As `idrecon history --format json` prints it.
    let listed = serde_json::to_value(&runs).expect("history JSON");
    assert_eq!(listed[0]["mail_status"], "failed");
    assert!(
        listed[0]["mail_error"]
            .as_str()
            .is_some_and(|e| e.contains("127.0.0.1")),
        "{}",
        listed[0]
    );
    assert_eq!(
        app.store()
            .await
            .runs_with_unsent_mail()
            .await
            .expect("unsent"),
        vec![first.run_id]
    );

    // The server is back: the next run mails its own report and the earlier one.
    let (addr, mailbox) = start_smtp_server().await;
    app.reconfigure(&smtp_overrides(addr.port()));
    let second = app.report_only().await;
    let outcome = mail_run(&app.config(), &app.store().await, &second, None).await;
    assert_eq!(outcome, MailOutcome::Sent);

    let messages = mailbox.0.lock().expect("mailbox").clone();
    assert_eq!(messages.len(), 2, "this run's mail and the retried one");
    let subjects: Vec<String> = messages
        .iter()
        .map(|m| {
            let parsed = mail_parser::MessageParser::default()
                .parse(m)
                .expect("a MIME message");
            parsed.subject().unwrap_or_default().to_string()
        })
        .collect();
    let label = app.config().report.tenant_label.clone().unwrap_or_default();
    assert!(
        subjects.contains(&email::subject(&first, &label)),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&email::subject(&second, &label)),
        "{subjects:?}"
    );
    assert!(app
        .store()
        .await
        .runs_with_unsent_mail()
        .await
        .expect("unsent")
        .is_empty());
    let runs = app.store().await.list_runs(5).await.expect("runs");
    assert!(runs.iter().all(|r| r.mail_status == Some(MailStatus::Sent)));
}

/// Several runs whose mail failed: once mail works again, a run sends its
/// own report and the newest earlier unsent one, not every earlier one;
/// the older ones are given up, and never re-sent by later runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_newest_unsent_mail_is_retried_and_older_ones_are_given_up() {
    let mut app = spawn_app(300, 6).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    app.reconfigure(&smtp_overrides(closed));
    let mut failed = Vec::new();
    for _ in 0..4 {
        let report = app.report_only().await;
        let outcome = mail_run(&app.config(), &app.store().await, &report, None).await;
        assert!(matches!(outcome, MailOutcome::Failed(_)), "{outcome:?}");
        failed.push(report);
    }
    // While mail is down each run retries only the newest earlier one, so
    // the two oldest were given up along the way.
    let newest_failed = failed.last().unwrap();
    assert_eq!(
        app.store()
            .await
            .runs_with_unsent_mail()
            .await
            .expect("unsent"),
        vec![failed[2].run_id, newest_failed.run_id]
    );

    let (addr, mailbox) = start_smtp_server().await;
    app.reconfigure(&smtp_overrides(addr.port()));
    let now = app.report_only().await;
    assert_eq!(
        mail_run(&app.config(), &app.store().await, &now, None).await,
        MailOutcome::Sent
    );
    let subjects: Vec<String> = mailbox
        .0
        .lock()
        .expect("mailbox")
        .iter()
        .map(|m| {
            mail_parser::MessageParser::default()
                .parse(m)
                .expect("a MIME message")
                .subject()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let label = app.config().report.tenant_label.clone().unwrap_or_default();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(subjects.contains(&email::subject(&now, &label)));
    assert!(subjects.contains(&email::subject(newest_failed, &label)));
    assert!(app
        .store()
        .await
        .runs_with_unsent_mail()
        .await
        .expect("unsent")
        .is_empty());

    // History: the superseded ones stay failed, saying they were given up.
    let runs = app.store().await.list_runs(10).await.expect("runs");
    for old in &failed[..3] {
        let row = runs.iter().find(|r| r.id == old.run_id).unwrap();
        assert_eq!(row.mail_status, Some(MailStatus::Failed));
        let error = row.mail_error.clone().unwrap_or_default();
        assert!(error.starts_with("given up: not re-sent"), "{error}");
        assert!(error.contains("last error:"), "{error}");
    }

    // A later run sends only its own report.
    let later = app.report_only().await;
    mail_run(&app.config(), &app.store().await, &later, None).await;
    assert_eq!(mailbox.0.lock().expect("mailbox").len(), 3);
}

/// Graph `sendMail` faults: a transient one is retried, a permanent one is
/// recorded as a failed mail and retried with the next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_mail_faults_are_retried_or_recorded() {
    let app = TestApp::builder(300, 4).faults("mail:503@1").start().await;
    let graph = graph_sender(&app.sources());
    let first = app.report_only().await;
    assert_eq!(
        mail_run(&app.config(), &app.store().await, &first, graph.as_ref()).await,
        MailOutcome::Sent
    );
    assert_eq!(app.handle.sent_mail().len(), 1);

    app.handle
        .set_faults(idrecon::sim::FaultPlan::from_str("mail:400x*").expect("spec"));
    let second = app.report_only().await;
    let outcome = mail_run(&app.config(), &app.store().await, &second, graph.as_ref()).await;
    assert!(matches!(outcome, MailOutcome::Failed(_)), "{outcome:?}");
    assert_eq!(
        app.store()
            .await
            .runs_with_unsent_mail()
            .await
            .expect("unsent"),
        vec![second.run_id]
    );

    app.handle.set_faults(idrecon::sim::FaultPlan::none());
    let third = app.report_only().await;
    assert_eq!(
        mail_run(&app.config(), &app.store().await, &third, graph.as_ref()).await,
        MailOutcome::Sent
    );
    assert_eq!(
        app.handle.sent_mail().len(),
        3,
        "run 1, run 3 and the retried run 2"
    );
    assert!(app
        .store()
        .await
        .runs_with_unsent_mail()
        .await
        .expect("unsent")
        .is_empty());
}
