//! The run history pages of `idrecon run` in a real browser: the worker on
//! port 0 against the simulator runs two scheduled reconciles, then headless
//! Chromium (Debian's `chromium`, installed by .ci/run) loads `/` and a run
//! page; the test checks the rendered DOM (the chart's points, the runs, the
//! escaping of a hostile display name) and that Chromium reports no
//! Content-Security-Policy violation. Over plain HTTP: the security headers,
//! the downloads, the bearer/basic token and the refusal on a non-loopback
//! listener without a token.
//!
//! Without Chromium the test is skipped loudly, unless
//! IDRECON_REQUIRE_BROWSER is set (as .ci/run does): then it fails.

use crate::app_support::TestApp;
use crate::parts::WorkerParts;
use crate::worker_support;

use idrecon::clock::Clock;
use idrecon::report::RunStatus;
use idrecon::server::{StatusServer, StatusState};
use idrecon::store::{SqliteStore, Store};
use idrecon::web::auth::Access;
use idrecon::web::HistoryPages;
use idrecon::worker::work;
use secrecy::SecretString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use worker_support::{eventually, fast_http, utc};

const HOSTILE: &str = "<img src=x onerror=alert(1)>";
const LIMIT: Duration = Duration::from_secs(240);

/// Where the screenshot of `/` is written when IDRECON_SCREENSHOT is set
/// (docs/web-history.png was made this way).
const SCREENSHOT_ENV: &str = "IDRECON_SCREENSHOT";

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// Runs headless Chromium on `url` with `extra` arguments (`--dump-dom` or
/// `--screenshot=…`) and a fresh profile; returns stdout and stderr.
fn browse(chromium: &Path, profile: &Path, url: &str, extra: &[String]) -> (String, String) {
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("starting {}: {e}", chromium.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "chromium on {url} failed: {stderr}"
    );
    (stdout, stderr)
}

/// The DOM of `url` as Chromium rendered it, after checking that Chromium
/// logged no Content-Security-Policy violation (a wrong style hash would).
async fn dom(chromium: &Path, profile: &Path, url: &str) -> String {
    let (chromium, profile, url) = (chromium.to_owned(), profile.to_owned(), url.to_string());
    let (dom, log) = tokio::task::spawn_blocking(move || {
        browse(&chromium, &profile, &url, &["--dump-dom".to_string()])
    })
    .await
    .unwrap();
    assert!(
        !log.contains("Content Security Policy"),
        "CSP violation reported by Chromium:\n{log}"
    );
    dom
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        if std::env::var_os("IDRECON_REQUIRE_BROWSER").is_some() {
            panic!("IDRECON_REQUIRE_BROWSER is set but no chromium was found on PATH");
        }
        eprintln!(
            "\n!!!!!!!! SKIPPED history_pages_in_headless_chromium: no chromium on PATH \
             (apt-get install chromium, or run .ci/run) !!!!!!!!\n"
        );
        return;
    };
    let env = TestApp::builder(80, 11).http(fast_http()).start().await;
    let parts = WorkerParts::new(&env, utc("2026-03-01T12:00:00Z")).await;
    let (store, schedule, clock, status) =
        (&parts.store, &parts.schedule, &parts.clock, &parts.status);
    let server = StatusServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr();
    let access = Access::for_listener(addr, None);
    assert!(matches!(access, Access::LoopbackOnly));
    let server = server.with_history(HistoryPages::new(Arc::new(store.clone()), access));
    let base = format!("http://{addr}");
    let worker = parts.worker();
    let shutdown = CancellationToken::new();
    let sim = env.sim.handle();
    let profile = tempfile::tempdir().unwrap();

    let driver = async {
        // Two scheduled runs; before the second, a person with a finding
        // gets a hostile display name in Azure.
        let due1 = schedule.next_after(clock.now());
        clock.wait_for_sleeper(due1).await;
        clock.set(due1);
        let due2 = schedule.next_after(due1);
        eventually("run 1", || status.health().next_run == Some(due2)).await;
        let first = store.load_report(1).await.unwrap().unwrap();
        assert_eq!(
            first.status,
            RunStatus::Completed,
            "{:?}",
            first.abort_reason
        );
        let victim = first
            .findings
            .iter()
            .find_map(|f| f.aad_id.clone())
            .expect("a finding about an Azure user");
        sim.update_azure(|users| {
            let user = users.iter_mut().find(|u| u.id() == victim).unwrap();
            user.edit(|fields| fields.display_name = Some(HOSTILE.into()));
        });
        clock.wait_for_sleeper(due2).await;
        clock.set(due2);
        let due3 = schedule.next_after(due2);
        eventually("run 2", || status.health().next_run == Some(due3)).await;
        let second = store.load_report(2).await.unwrap().unwrap();
        assert_eq!(second.status, RunStatus::Completed);
        assert!(
            second
                .findings
                .iter()
                .any(|f| f.display_name.as_deref() == Some(HOSTILE)),
            "run 2 reports the renamed person"
        );

        // `/` in Chromium: both runs listed, one chart point per run and
        // kind with the run's count.
        let page = dom(&chromium, profile.path(), &format!("{base}/")).await;
        assert!(page.contains("idrecon run history"), "{page}");
        for (run, report) in [(1, &first), (2, &second)] {
            assert!(
                page.contains(&format!("<a href=\"/runs/{run}\">#{run}</a>")),
                "run {run} listed\n{page}"
            );
            assert!(
                page.contains(&format!("href=\"/runs/{run}.csv\"")),
                "{page}"
            );
            for (kind, count) in &report.summary.by_kind {
                let point =
                    format!("data-kind=\"{kind}\" data-run=\"{run}\" data-count=\"{count}\"");
                assert!(page.contains(&point), "chart point {point} missing\n{page}");
            }
        }
        let kinds = first
            .summary
            .by_kind
            .len()
            .max(second.summary.by_kind.len());
        assert!(kinds > 0);
        assert_eq!(
            page.matches("<circle class=\"point\"").count(),
            2 * first
                .summary
                .by_kind
                .keys()
                .chain(second.summary.by_kind.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            "one point per kind and run"
        );
        assert!(page.contains("<polyline"), "{page}");

        // The run page: the HTML report, the hostile name as text only.
        let run_page = dom(&chromium, profile.path(), &format!("{base}/runs/2")).await;
        assert!(run_page.contains("idrecon run 2: completed"), "{run_page}");
        assert!(
            run_page.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "the hostile name is shown as text\n{run_page}"
        );
        assert!(!run_page.contains("<img"), "no image element was created");
        assert!(
            run_page.contains("<details"),
            "findings grouped in <details>"
        );

        // The report page fits 1,280 px without horizontal scrolling, even
        // with an unbroken 300-character value: measured by Chromium on a
        // copy of the page with a script that records the scroll width
        // (the served page allows no script).
        let mut wide = second.clone();
        let long = "x".repeat(300);
        wide.findings[0].flow_user_id = Some(long.clone());
        wide.findings[0].detail = long;
        let mut html = idrecon::report::html::render(&wide).unwrap();
        html = html.replace(
            "</body>",
            "<script>document.body.setAttribute('data-scroll-width', \
             document.documentElement.scrollWidth)</script></body>",
        );
        let file = profile.path().join("report.html");
        std::fs::write(&file, html).unwrap();
        let measured = dom(
            &chromium,
            profile.path(),
            &format!("file://{}", file.display()),
        )
        .await;
        let width: u32 = measured
            .split("data-scroll-width=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no measured width in\n{measured}"));
        assert!(
            width <= 1280,
            "the report is {width} px wide at a 1,280 px window"
        );

        // A screenshot of `/`, to look at (and for docs/web-history.png).
        let shot = match std::env::var_os(SCREENSHOT_ENV) {
            Some(path) => PathBuf::from(path),
            None => profile.path().join("history.png"),
        };
        let (chromium2, profile2, url) = (
            chromium.clone(),
            profile.path().to_owned(),
            format!("{base}/"),
        );
        let arg = format!("--screenshot={}", shot.display());
        tokio::task::spawn_blocking(move || browse(&chromium2, &profile2, &url, &[arg]))
            .await
            .unwrap();
        let png = std::fs::read(&shot).expect("the screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");

        check_headers_and_downloads(&base).await;
        check_token_and_refusal(store).await;
        shutdown.cancel();
    };
    tokio::time::timeout(LIMIT, async {
        tokio::join!(work(&worker, shutdown.clone(), Some(server)), driver)
    })
    .await
    .expect("the worker stops");
}

async fn check_headers_and_downloads(base: &str) {
    let client = reqwest::Client::new();
    let page = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let csp = header(&page, "content-security-policy");
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(csp.contains("style-src 'sha256-"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");

    let csv = client
        .get(format!("{base}/runs/1.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert_eq!(header(&csv, "content-type"), "text/csv; charset=utf-8");
    assert_eq!(
        header(&csv, "content-disposition"),
        "attachment; filename=\"idrecon-run-1.csv\""
    );
    assert!(header(&csv, "content-security-policy").contains("sandbox"));
    let json: serde_json::Value = client
        .get(format!("{base}/runs/2.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["run_id"], 2);
    for missing in ["/runs/99", "/runs/abc", "/runs/1.exe"] {
        let r = client.get(format!("{base}{missing}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{missing}");
    }
}

/// The same store behind a token, and behind a non-loopback rule without one.
async fn check_token_and_refusal(store: &SqliteStore) {
    let token = "correct horse battery staple";
    let client = reqwest::Client::new();
    let serve = |access: Access| {
        let store: Arc<dyn Store> = Arc::new(store.clone());
        async move {
            let server = StatusServer::bind("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            let base = format!("http://{}", server.local_addr());
            let stop = CancellationToken::new();
            let task = tokio::spawn(
                server
                    .with_history(HistoryPages::new(store, access))
                    .run(StatusState::new(), stop.clone()),
            );
            (base, stop, task)
        }
    };

    let (base, stop, task) = serve(Access::Token(SecretString::from(token))).await;
    for path in ["/", "/runs/1", "/runs/1.csv", "/runs/1.json"] {
        let url = format!("{base}{path}");
        let none = client.get(&url).send().await.unwrap();
        assert_eq!(none.status(), 401, "{path} without the token");
        assert!(none.headers().contains_key("www-authenticate"));
        let wrong = client.get(&url).bearer_auth("wrong").send().await.unwrap();
        assert_eq!(wrong.status(), 401, "{path} with a wrong token");
        let bearer = client.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(bearer.status(), 200, "{path} with the bearer token");
        let basic = client
            .get(&url)
            .basic_auth("admin", Some(token))
            .send()
            .await
            .unwrap();
        assert_eq!(
            basic.status(),
            200,
            "{path} with the token as basic password"
        );
    }
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "/healthz stays open for monitoring");
    stop.cancel();
    task.await.unwrap().unwrap();

    let (base, stop, task) = serve(Access::Refused).await;
    let refused = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("server.auth_token"));
    stop.cancel();
    task.await.unwrap().unwrap();
}
