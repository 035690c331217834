//! The transfer floor of a run, and the check that a run's findings are the
//! simulator's: the yardstick of `scripts/bench-demo.sh`.
//!
//! `floor walk --config SIM.toml [--second]` walks the pages a reconcile run
//! walks against that simulator (the configuration `idrecon sim` prints),
//! with the reqwest client settings idrecon's connectors use and no
//! processing at all: the three sources concurrently, each page parsed into a
//! `serde_json::Value` and dropped. The first run's Azure leg is Graph's
//! cheapest full listing (a `$deltatoken=latest` link, then
//! `/users?$select=…&$top=999` through every `@odata.nextLink`); the second
//! run's is one empty delta round. IFS pages go by `$skip`, the first with
//! `$count=true`, then `ifs.concurrency` at a time; Flow follows its cursor.
//! Prints one line: `floor wall_s=… peak_rss_kib=… graph_s=… ifs_s=… flow_s=…`
//! (each leg's own time, so the longest sequential chain is visible).
//!
//! `floor check --report REPORT.json --users N --seed S` compares the
//! findings of a JSON report with the generator's `expected` for that tenant:
//! the same keys, kinds and causes, exactly. Exit 1 on any difference.
//!
//! `floor generate --users N --seed S` times generating the tenant (the
//! part of `demo`'s cost that a separate simulator does not have).
//!
//! Run through cargo: `cargo bench --bench floor -- walk --config sim.toml`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use futures::stream::{self, StreamExt, TryStreamExt};
use idrecon::auth::{AccessTokenSource, ClientCredentials};
use idrecon::config::{self, Config};
use idrecon::sources::graph::USER_SELECT;
use idrecon::sources::http::{build_client, HttpSettings};
use idrecon::sources::System;
use secrecy::ExposeSecret;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;
use url::Url;

/// Graph's largest users page.
const GRAPH_TOP: usize = 999;

#[derive(Parser)]
#[command(about = "transfer floor and findings check for scripts/bench-demo.sh")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Walk the pages of a run with no processing.
    Walk {
        #[arg(long)]
        config: PathBuf,
        /// The second run: an empty delta round instead of the full Graph listing.
        #[arg(long)]
        second: bool,
    },
    /// Compare a JSON report's findings with the generator's expected ones.
    Check {
        #[arg(long)]
        report: PathBuf,
        #[arg(long)]
        users: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Time generating a tenant.
    Generate {
        #[arg(long)]
        users: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; nothing else reaches a harness-less bench.
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    if args.len() <= 1 {
        // `cargo bench` without arguments: nothing to measure without a simulator.
        eprintln!("floor: run through scripts/bench-demo.sh (see the module docs)");
        return Ok(());
    }
    match Args::parse_from(args).command {
        Command::Walk { config, second } => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(walk(config, second))
        }
        Command::Check {
            report,
            users,
            seed,
        } => check(&report, users, seed),
        Command::Generate { users, seed } => {
            let start = Instant::now();
            let generated = idrecon::sim::generate::generate(users, seed);
            println!(
                "generate wall_s={:.3} azure={} ifs={} flow={}",
                start.elapsed().as_secs_f64(),
                generated.tenant.azure.len(),
                generated.tenant.ifs.len(),
                generated.tenant.flow.len()
            );
            Ok(())
        }
    }
}

/// What walking one source cost.
struct Leg {
    pages: usize,
    entries: usize,
    seconds: f64,
}

async fn walk(config_path: PathBuf, second: bool) -> Result<()> {
    let cfg = Config::load(&config_path, &config::process_env())
        .map_err(|e| anyhow!("{}: {e}", config_path.display()))?;
    let http = build_client(System::Azure, &HttpSettings::default())?;
    let azure = ClientCredentials::azure(&cfg.azure, http.clone())?;
    let ifs = ClientCredentials::ifs(&cfg.ifs, http.clone())?;
    // Tokens first: a run has them before its first page too (cached).
    let graph_token = azure.access_token().await?;
    let ifs_token = ifs.access_token().await?;
    let graph_token = graph_token.expose_secret().to_string();
    let ifs_token = ifs_token.expose_secret().to_string();

    let endpoint = graph_endpoint(&cfg.azure.graph_url)?;
    let select = USER_SELECT.join(",");
    let latest = {
        let mut url = Url::parse(&format!("{endpoint}/users/delta"))?;
        url.query_pairs_mut()
            .append_pair("$select", &select)
            .append_pair("$deltatoken", "latest");
        url
    };
    // The second run starts from a stored delta link: take one now.
    let stored_link = if second {
        let page = get(&http, &latest, Bearer(&graph_token)).await?;
        Some(
            page["@odata.deltaLink"]
                .as_str()
                .context("no @odata.deltaLink")?
                .to_string(),
        )
    } else {
        None
    };

    let start = Instant::now();
    let graph = async {
        let t = Instant::now();
        let mut pages = 0;
        let mut entries = 0;
        let first = match &stored_link {
            Some(link) => Url::parse(link)?,
            None => {
                get(&http, &latest, Bearer(&graph_token)).await?;
                pages += 1;
                let mut url = Url::parse(&format!("{endpoint}/users"))?;
                url.query_pairs_mut()
                    .append_pair("$select", &select)
                    .append_pair("$top", &GRAPH_TOP.to_string());
                url
            }
        };
        let mut next = Some(first);
        while let Some(url) = next.take() {
            let page = get(&http, &url, Bearer(&graph_token)).await?;
            pages += 1;
            entries += page["value"].as_array().map_or(0, Vec::len);
            next = page["@odata.nextLink"]
                .as_str()
                .map(Url::parse)
                .transpose()?;
        }
        anyhow::Ok(Leg {
            pages,
            entries,
            seconds: t.elapsed().as_secs_f64(),
        })
    };
    let ifs_leg = async {
        let t = Instant::now();
        let users = idrecon::sources::http::join_path(&cfg.ifs.url, &cfg.ifs.users_path);
        let page_size = cfg.ifs.page_size as usize;
        let ifs_select = format!(
            "Identity,Description,{},Active{}",
            cfg.ifs.directory_id_field,
            cfg.ifs
                .email_field
                .as_deref()
                .map(|f| format!(",{f}"))
                .unwrap_or_default()
        );
        let page_url = |skip: usize, count: bool| {
            let mut url = users.clone();
            let mut q = url.query_pairs_mut();
            q.append_pair("$select", &ifs_select)
                .append_pair("$orderby", "Identity")
                .append_pair("$top", &page_size.to_string())
                .append_pair("$skip", &skip.to_string());
            if count {
                q.append_pair("$count", "true");
            }
            drop(q);
            url
        };
        let first = get(&http, &page_url(0, true), Bearer(&ifs_token)).await?;
        let total = first["@odata.count"]
            .as_u64()
            .context("IFS sent no @odata.count")? as usize;
        let mut entries = first["value"].as_array().map_or(0, Vec::len);
        drop(first);
        let rest: Vec<usize> = (1..total.div_ceil(page_size)).collect();
        let pages = 1 + rest.len();
        entries += stream::iter(rest)
            .map(|k| {
                let url = page_url(k * page_size, false);
                let http = &http;
                let token = &ifs_token;
                async move {
                    let page = get(http, &url, Bearer(token)).await?;
                    anyhow::Ok(page["value"].as_array().map_or(0, Vec::len))
                }
            })
            .buffer_unordered(cfg.ifs.concurrency.max(1) as usize)
            .try_fold(0, |sum, n| async move { Ok(sum + n) })
            .await?;
        anyhow::Ok(Leg {
            pages,
            entries,
            seconds: t.elapsed().as_secs_f64(),
        })
    };
    let flow = async {
        let t = Instant::now();
        let base = cfg.flow.url.clone().context("flow.url")?;
        let users = idrecon::sources::http::join_path(&base, "users");
        let username = cfg.flow.username.clone().context("flow.username")?;
        let password = cfg.flow.password.clone().context("flow.password")?;
        let auth = Basic(&username, password.expose_secret());
        let mut pages = 0;
        let mut entries = 0;
        let mut cursor: Option<String> = None;
        loop {
            let mut url = users.clone();
            if let Some(c) = &cursor {
                url.query_pairs_mut().append_pair("cursor", c);
            }
            let page = get(&http, &url, auth).await?;
            pages += 1;
            entries += page["users"].as_array().map_or(0, Vec::len);
            match page["nextCursor"].as_str().filter(|c| !c.is_empty()) {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        anyhow::Ok(Leg {
            pages,
            entries,
            seconds: t.elapsed().as_secs_f64(),
        })
    };
    let (graph, ifs_leg, flow) = tokio::join!(graph, ifs_leg, flow);
    let wall = start.elapsed().as_secs_f64();
    let (graph, ifs_leg, flow) = (graph?, ifs_leg?, flow?);
    println!(
        "floor wall_s={wall:.3} peak_rss_kib={} graph_s={:.3} graph_pages={} graph_entries={} ifs_s={:.3} ifs_pages={} ifs_entries={} flow_s={:.3} flow_pages={} flow_entries={}",
        peak_rss_kib().unwrap_or(0),
        graph.seconds,
        graph.pages,
        graph.entries,
        ifs_leg.seconds,
        ifs_leg.pages,
        ifs_leg.entries,
        flow.seconds,
        flow.pages,
        flow.entries,
    );
    Ok(())
}

/// `{graph_url}/v1.0`, as the Graph connector builds it.
fn graph_endpoint(graph_url: &Url) -> Result<String> {
    let base = graph_url.as_str().trim_end_matches('/');
    Ok(if base.ends_with("/v1.0") {
        base.to_string()
    } else {
        format!("{base}/v1.0")
    })
}

#[derive(Clone, Copy)]
struct Bearer<'a>(&'a str);

#[derive(Clone, Copy)]
struct Basic<'a>(&'a str, &'a str);

trait Authorize {
    fn authorize(self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder;
}

impl Authorize for Bearer<'_> {
    fn authorize(self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.bearer_auth(self.0)
    }
}

impl Authorize for Basic<'_> {
    fn authorize(self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.basic_auth(self.0, Some(self.1))
    }
}

/// One page, parsed into a `Value` (the only work the floor does).
async fn get(http: &reqwest::Client, url: &Url, auth: impl Authorize) -> Result<Value> {
    let response = auth
        .authorize(http.get(url.clone()))
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("{} answered {status}", url.path());
    }
    Ok(serde_json::from_slice(&body)?)
}

/// The process's peak resident set (VmHWM), in KiB (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn check(report: &PathBuf, users: usize, seed: u64) -> Result<()> {
    let text = std::fs::read(report).with_context(|| report.display().to_string())?;
    let report: idrecon::report::Report = serde_json::from_slice(&text)?;
    drop(text);
    let got: BTreeMap<String, (String, Option<String>)> = report
        .findings
        .iter()
        .map(|f| {
            (
                f.key(),
                (
                    f.kind.as_str().to_string(),
                    f.cause.map(|c| c.as_str().to_string()),
                ),
            )
        })
        .collect();
    if got.len() != report.findings.len() {
        bail!(
            "the report has {} findings but {} distinct keys",
            report.findings.len(),
            got.len()
        );
    }
    let expected = idrecon::sim::generate::generate(users, seed).expected;
    let want: BTreeMap<String, (String, Option<String>)> = expected
        .iter()
        .map(|f| {
            (
                f.key.clone(),
                (
                    f.kind.as_str().to_string(),
                    f.cause.map(|c| c.as_str().to_string()),
                ),
            )
        })
        .collect();
    let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let differing: Vec<&String> = want
        .iter()
        .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
        .map(|(k, _)| k)
        .collect();
    if missing.is_empty() && extra.is_empty() && differing.is_empty() {
        println!("check ok: {} findings as expected", got.len());
        return Ok(());
    }
    bail!(
        "findings differ from the generator's: {} missing (e.g. {:?}), {} unexpected (e.g. {:?}), {} with another kind or cause (e.g. {:?})",
        missing.len(),
        missing.iter().take(3).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(3).collect::<Vec<_>>(),
        differing.len(),
        differing.iter().take(3).collect::<Vec<_>>()
    )
}
