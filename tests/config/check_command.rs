//! `idrecon check` (the binary) against the simulator: all green, the
//! plain-words failures (wrong Azure secret, Graph 403, IFS 403, Flow 401),
//! the store's migration state, an SMTP conversation, config errors — and
//! that nothing is changed.

use crate::app_support::TestApp;
use crate::smtp_support;
use crate::worker_support;

use assert_cmd::cargo::cargo_bin;
use idrecon::sim::{FaultPlan, AZURE_CLIENT_SECRET, FLOW_PASSWORD};
use idrecon::store::SqliteStore;
use mailin::{AuthMechanism, Handler, Response, SessionBuilder};
use smtp_support::serve_connection;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use worker_support::replace;

struct Checked {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `idrecon --config PATH check` off the async threads (the simulator
/// keeps serving on them).
async fn check(config: &Path) -> Checked {
    let config = config.to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::new(cargo_bin("idrecon"))
            .arg("--config")
            .arg(&config)
            .arg("check")
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    Checked {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn line<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l[l.char_indices().nth(2).map_or(0, |(i, _)| i)..].starts_with(name))
        .unwrap_or_else(|| panic!("no line for {name:?} in:\n{stdout}"))
}

fn passed(stdout: &str, name: &str) -> bool {
    line(stdout, name).starts_with('✔')
}

const CHECKS: [&str; 9] = [
    "configuration",
    "Azure AD sign-in",
    "Azure AD users (Microsoft Graph)",
    "IFS IAM sign-in",
    "IFS users (OData)",
    "Flow endpoint",
    "report mail",
    "store",
    "Next 5 runs",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_green_exits_0_prints_five_times_and_changes_nothing() {
    let env = TestApp::builder(30, 4).start().await;
    let db = env.dir.path().join("idrecon.db");
    let out = check(&env.config_path).await;
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    for name in &CHECKS[..8] {
        assert!(passed(&out.stdout, name), "{name}:\n{}", out.stdout);
    }
    assert!(!out.stdout.contains('✘'), "{}", out.stdout);
    assert!(out.stdout.contains("All checks passed."));
    assert!(
        line(&out.stdout, "store").contains("does not exist yet"),
        "{}",
        out.stdout
    );
    // The next five 02:00 runs in Europe/Stockholm.
    let times: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Next 5 runs (0 2 * * * in Europe/Stockholm)"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(times.len(), 5, "{}", out.stdout);
    for t in &times {
        assert!(
            t.contains(" 02:00 CET") || t.contains(" 02:00 CEST"),
            "{t:?}"
        );
    }
    // Changes nothing: no store file, no Flow write, no mail.
    assert!(!db.exists(), "check created the store");
    let sim = env.sim.handle();
    assert_eq!(sim.write_counts(), (0, 0));
    assert!(sim.sent_mail().is_empty());
    assert!(sim.request_count("/graph/v1.0/users") >= 1);
    assert!(sim.request_count("/flow/users") >= 1);
    // Graph mail: the sender mailbox was looked up, nothing was sent.
    let mail = line(&out.stdout, "report mail");
    assert!(
        mail.contains("the sender mailbox idrecon@contoso.com exists"),
        "{mail}"
    );
    assert!(sim.request_count("/graph/v1.0/users/idrecon@contoso.com") >= 1);

    // With a migrated store it says the schema is current.
    SqliteStore::open(&env.store_url)
        .await
        .unwrap()
        .close()
        .await;
    let out = check(&env.config_path).await;
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(
        line(&out.stdout, "store").contains("schema up to date"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_azure_secret_is_named_in_plain_words() {
    let wrong = "not-the-right-secret-value";
    let env = TestApp::builder(10, 4)
        .edit(|t| {
            replace(
                t,
                &format!("client_secret = \"{AZURE_CLIENT_SECRET}\""),
                &format!("client_secret = \"{wrong}\""),
            )
        })
        .start()
        .await;
    let out = check(&env.config_path).await;
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    let login = line(&out.stdout, "Azure AD sign-in");
    assert!(login.starts_with('✘'), "{login}");
    assert!(
        login.contains("Azure AD rejected the app's credentials"),
        "{login}"
    );
    assert!(login.contains("azure.client_secret"), "{login}");
    assert!(line(&out.stdout, "Azure AD users (Microsoft Graph)").starts_with('✘'));
    // Graph mail needs the same token.
    assert!(line(&out.stdout, "report mail").starts_with('✘'));
    // The other systems are still checked and fine.
    assert!(passed(&out.stdout, "IFS users (OData)"), "{}", out.stdout);
    assert!(passed(&out.stdout, "Flow endpoint"), "{}", out.stdout);
    assert!(out.stdout.contains("3 checks failed."), "{}", out.stdout);
    assert!(!out.stdout.contains(wrong) && !out.stderr.contains(wrong));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_permissions_are_explained() {
    let env = TestApp::builder(10, 4).start().await;
    let sim = env.sim.handle();

    // Graph answers 403 to the listing (the simulator's status fault).
    sim.set_faults("graph:403x*".parse::<FaultPlan>().unwrap());
    let out = check(&env.config_path).await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(passed(&out.stdout, "Azure AD sign-in"));
    let graph = line(&out.stdout, "Azure AD users (Microsoft Graph)");
    assert!(graph.starts_with('✘'), "{graph}");
    assert!(
        graph.contains("lacks Microsoft Graph application permission User.Read.All"),
        "{graph}"
    );
    assert!(graph.contains("grant admin consent"), "{graph}");

    // IFS refuses the Users listing.
    sim.set_faults("ifs:403x*".parse::<FaultPlan>().unwrap());
    let out = check(&env.config_path).await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    let ifs = line(&out.stdout, "IFS users (OData)");
    assert!(
        ifs.starts_with('✘') && ifs.contains("Service Accounts enabled"),
        "{ifs}"
    );
    assert!(passed(&out.stdout, "Azure AD users (Microsoft Graph)"));
    sim.set_faults(FaultPlan::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_flow_password_is_explained() {
    let env = TestApp::builder(10, 4)
        .edit(|t| {
            replace(
                t,
                &format!("password = \"{FLOW_PASSWORD}\""),
                "password = \"wrong-flow-password\"",
            )
        })
        .start()
        .await;
    let out = check(&env.config_path).await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    let flow = line(&out.stdout, "Flow endpoint");
    assert!(
        flow.starts_with('✘') && flow.contains("flow.username/password rejected"),
        "{flow}"
    );
    assert!(!out.stdout.contains("wrong-flow-password"));
    assert!(out.stdout.contains("1 check failed."), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_behind_on_migrations_is_reported_and_left_alone() {
    let env = TestApp::builder(10, 4).start().await;
    // An empty file is an SQLite database without any migration applied.
    let db = env.dir.path().join("idrecon.db");
    std::fs::write(&db, b"").unwrap();
    let out = check(&env.config_path).await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    let store = line(&out.stdout, "store");
    assert!(
        store.starts_with('✘') && store.contains("pending: run `idrecon migrate`"),
        "{store}"
    );
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "check migrated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_error_exits_3_naming_the_key() {
    let env = TestApp::builder(5, 4)
        .edit(|t| {
            replace(
                t,
                "max_change_percent = 5.0",
                "max_change_percent = \"lots\"",
            )
        })
        .start()
        .await;
    let out = check(&env.config_path).await;
    assert_eq!(out.code, Some(3), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("fix.max_change_percent"),
        "{}",
        out.stderr
    );
    assert_eq!(env.sim.handle().request_count("/"), 0, "nothing contacted");
}

// ------------------------------------------------------------------ SMTP

/// Accepts only the given login; records nothing else (check sends no mail).
struct LoginOnly {
    accept: (String, String),
    data_seen: Arc<Mutex<bool>>,
}

impl Handler for LoginOnly {
    fn data_start(&mut self, _: &str, _: &str, _: bool, _: &[String]) -> Response {
        *self.data_seen.lock().unwrap() = true;
        mailin::response::OK
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        if (user, password) == (self.accept.0.as_str(), self.accept.1.as_str()) {
            mailin::response::AUTH_OK
        } else {
            mailin::response::INVALID_CREDENTIALS
        }
    }
}

async fn start_smtp(user: &str, password: &str) -> (SocketAddr, Arc<Mutex<bool>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let data_seen = Arc::new(Mutex::new(false));
    let mut builder = SessionBuilder::new("check-smtp.local");
    builder
        .enable_auth(AuthMechanism::Plain)
        .insecure_enable_plaintext_auth();
    let accept = (user.to_string(), password.to_string());
    let seen = data_seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let handler = LoginOnly {
                accept: accept.clone(),
                data_seen: seen.clone(),
            };
            tokio::spawn(serve_connection(stream, builder.build(peer.ip(), handler)));
        }
    });
    (addr, data_seen)
}

fn smtp_config(text: String, addr: SocketAddr, password: &str) -> String {
    let text = replace(
        text,
        "transport = \"graph\"",
        &format!(
            "transport = \"smtp\"\nsmtp_url = \"smtp://{addr}?tls=opportunistic\"\nsmtp_username = \"relay-user\"\nsmtp_password = \"{password}\""
        ),
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_login_is_tested_without_sending() {
    let (addr, data_seen) = start_smtp("relay-user", "relay-pass").await;
    let env = TestApp::builder(5, 4)
        .edit(|t| smtp_config(t, addr, "relay-pass"))
        .start()
        .await;
    let out = check(&env.config_path).await;
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let mail = line(&out.stdout, "report mail");
    assert!(
        mail.contains(&format!("SMTP {}:{}", addr.ip(), addr.port()))
            && mail.contains("accepted the connection and the login"),
        "{mail}"
    );
    assert!(!*data_seen.lock().unwrap(), "check sent a mail");

    let env = TestApp::builder(5, 4)
        .edit(|t| smtp_config(t, addr, "wrong-pass"))
        .start()
        .await;
    let out = check(&env.config_path).await;
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    let mail = line(&out.stdout, "report mail");
    assert!(
        mail.starts_with('✘') && mail.contains("login as \"relay-user\" failed"),
        "{mail}"
    );
    assert!(!out.stdout.contains("wrong-pass"));
}

/// `graph_url` with its version, as many admins write it.
fn graph_url_with_version(text: String) -> String {
    text.lines()
        .map(|l| match l.strip_prefix("graph_url = \"") {
            Some(rest) => format!("graph_url = \"{}/v1.0\"", rest.trim_end_matches('"')),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_mail_checks_the_sender_mailbox_whatever_form_graph_url_takes() {
    let env = TestApp::builder(5, 4)
        .edit(graph_url_with_version)
        .start()
        .await;
    assert!(
        env.config_text.contains("/graph/v1.0\""),
        "{}",
        env.config_text
    );
    let out = check(&env.config_path).await;
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let mail = line(&out.stdout, "report mail");
    assert!(
        mail.contains("sender mailbox idrecon@contoso.com exists"),
        "{mail}"
    );
    let sim = env.sim.handle();
    assert!(sim.request_count("/graph/v1.0/v1.0") == 0);
    assert!(sim.sent_mail().is_empty());

    let env = TestApp::builder(5, 4)
        .edit(|t| {
            replace(
                t,
                "from = \"idrecon@contoso.com\"",
                "from = \"nobody@contoso.com\"",
            )
        })
        .start()
        .await;
    let out = check(&env.config_path).await;
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    let mail = line(&out.stdout, "report mail");
    assert!(
        mail.starts_with('✘')
            && mail.contains("no user nobody@contoso.com")
            && mail.contains("report.from"),
        "{mail}"
    );
}
