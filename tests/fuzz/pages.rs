//! The Graph, IFS and Flow page parsers against arbitrary bodies: the
//! simulator issues the tokens, a scripted server on port 0 answers every
//! listing request with the fuzzed body (and refuses any follow-up page, so
//! a link in the body cannot loop). Never a panic; a refusal starts with
//! the source's name.

use crate::app_support::test_http_settings;
use crate::{nasty_text, runner};
use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use idrecon::config::Config;
use idrecon::sim::generate::generate;
use idrecon::sim::{FaultPlan, Simulator};
use idrecon::sources::live::LiveSources;
use idrecon::sources::Sources;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the scripted server answers: the fuzzed body once, then 400.
#[derive(Default)]
struct Script {
    body: Mutex<Vec<u8>>,
    json: AtomicBool,
    served: AtomicBool,
}

async fn serve(state: Arc<Script>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || {
        let state = state.clone();
        async move {
            if state.served.swap(true, Ordering::SeqCst) {
                return (StatusCode::BAD_REQUEST, "no further pages in this case").into_response();
            }
            let body = Bytes::from(state.body.lock().unwrap().clone());
            let kind = if state.json.load(Ordering::SeqCst) {
                "application/json"
            } else {
                "text/html"
            };
            ([(header::CONTENT_TYPE, kind)], body).into_response()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

const KEYS: &[&str] = &[
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "accountEnabled",
    "employeeId",
    "onPremisesSamAccountName",
    "userType",
    "@removed",
    "Identity",
    "Description",
    "WebUser",
    "Active",
    "Email",
    "UserId",
    "userId",
    "active",
    "value",
    "users",
    "@odata.nextLink",
    "@odata.deltaLink",
    "@odata.count",
    "nextCursor",
    "cursor",
    "error",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        nasty_text().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// A page-shaped body: `value` (or `users`) holding user-like objects,
/// plus link fields holding junk.
fn page() -> impl Strategy<Value = Vec<u8>> {
    let user = prop::collection::vec((prop::sample::select(KEYS), json_value()), 0..9)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));
    (
        prop::sample::select(vec!["value", "users", "items"]),
        prop::collection::vec(user, 0..5),
        prop::collection::vec(
            (
                prop::sample::select(vec!["@odata.nextLink", "@odata.deltaLink", "nextCursor"]),
                json_value(),
            ),
            0..2,
        ),
    )
        .prop_map(|(list_key, users, links)| {
            let mut page = serde_json::Map::new();
            page.insert(list_key.to_string(), Value::Array(users));
            for (k, v) in links {
                page.insert(k.to_string(), v);
            }
            serde_json::to_vec(&Value::Object(page)).unwrap()
        })
}

fn body() -> impl Strategy<Value = (bool, Vec<u8>)> {
    prop_oneof![
        3 => page().prop_map(|b| (true, b)),
        1 => json_value().prop_map(|v| (true, serde_json::to_vec(&v).unwrap())),
        1 => prop::collection::vec(any::<u8>(), 0..400).prop_map(|b| (true, b)),
        1 => Just((false, b"<html><body>Sign in</body></html>".to_vec())),
    ]
}

/// The simulator's config with the listing URLs on the scripted server.
fn config(sim: &Simulator, fuzz: SocketAddr, dir: &std::path::Path) -> Config {
    let store_url = format!("sqlite://{}", dir.join("fuzz.db").display());
    let mut table: toml::Table = sim.config_toml(&store_url).parse().unwrap();
    let sim_base = sim.base_url();
    let fuzz_base = format!("http://{fuzz}");
    for (section, key) in [("azure", "graph_url"), ("ifs", "url"), ("flow", "url")] {
        let t = table.get_mut(section).unwrap().as_table_mut().unwrap();
        let url = t[key].as_str().unwrap().replace(&sim_base, &fuzz_base);
        t.insert(key.to_string(), toml::Value::String(url));
    }
    Config::from_toml_str(&toml::to_string(&table).unwrap(), &HashMap::new(), dir).unwrap()
}

#[test]
fn page_parsers_never_panic_and_name_the_source() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = Arc::new(Script::default());
    let (sim, sources) = rt.block_on(async {
        let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
        let sim = Simulator::start(generate(5, 1).tenant, FaultPlan::none(), loopback)
            .await
            .unwrap();
        let fuzz = serve(script.clone()).await;
        let cfg = config(&sim, fuzz, dir.path());
        let sources = LiveSources::with_settings(&cfg, &test_http_settings()).unwrap();
        (sim, sources)
    });

    let mut runner = runner(150);
    runner
        .run(&body(), |(is_json, bytes)| {
            *script.body.lock().unwrap() = bytes.clone();
            script.json.store(is_json, Ordering::SeqCst);
            let outcomes = rt.block_on(async {
                let mut out = Vec::new();
                script.served.store(false, Ordering::SeqCst);
                out.push((
                    "Azure AD: ",
                    sources.fetch_azure(None).await.err().map(|e| e.to_string()),
                ));
                script.served.store(false, Ordering::SeqCst);
                out.push((
                    "Azure AD: ",
                    sources
                        .graph()
                        .fetch_full()
                        .await
                        .err()
                        .map(|e| e.to_string()),
                ));
                script.served.store(false, Ordering::SeqCst);
                out.push((
                    "IFS: ",
                    sources.fetch_ifs().await.err().map(|e| e.to_string()),
                ));
                script.served.store(false, Ordering::SeqCst);
                out.push((
                    "Flow: ",
                    sources.fetch_flow().await.err().map(|e| e.to_string()),
                ));
                out
            });
            for (prefix, error) in outcomes {
                if let Some(message) = error {
                    prop_assert!(
                        message.starts_with(prefix) && message.len() > prefix.len(),
                        "{message} (body {:?})",
                        String::from_utf8_lossy(&bytes)
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    rt.block_on(sim.shutdown());
}
