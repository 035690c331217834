//! The built-in simulator: Azure AD login + Microsoft Graph, IFS IAM + IFS
//! OData, and the Flow endpoint, served by one HTTP server under distinct
//! path prefixes of one base URL:
//!
//! | prefix | service | config key |
//! |---|---|---|
//! | `/azure-login` | Azure AD token endpoint | `azure.login_url` |
//! | `/graph` | Microsoft Graph | `azure.graph_url` |
//! | `/ifs` | IFS OData and IFS IAM (`/ifs/auth/realms/prod`) | `ifs.url`, `ifs.issuer_url` |
//! | `/flow` | Flow endpoint (docs/contract.md) | `flow.url` |
//!
//! Used by `idrecon demo`, `idrecon sim`, the integration tests and the
//! benchmarks. Behaviour follows docs/external-apis.md; see
//! docs/simulator.md for the details, the credentials and the fault syntax.

// Handlers return `Result<_, Response>` for early exits: the error is the
// finished HTTP answer, returned once, never propagated through layers.
#![allow(clippy::result_large_err)]

mod assertion;
mod azure;
pub mod config;
pub mod faults;
mod flow;
pub mod generate;
mod graph;
mod graph_mail;
mod ifs;
mod ifs_filter;
mod server;
mod sort;
mod state;

pub use assertion::{thumbprint_s256, thumbprint_sha1};
pub use config::{
    IfsActiveFormat, IfsPaging, SimSettings, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, FLOW_PASSWORD,
    FLOW_USERNAME, IFS_CLIENT_ID, IFS_CLIENT_SECRET, IFS_REALM, MAIL_RECIPIENT, MAIL_SENDER,
    TENANT, TENANT_GUID,
};
pub use faults::FaultPlan;
pub use state::{FlowWrite, RemovalReason, SentMail};

use idrecon_core::model::{AadUser, FlowUser, IfsUser};
use state::{lock, read, write, IfsStore, SimState};
use std::collections::HashMap;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The contents of the three simulated directories.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tenant {
    pub azure: Vec<AadUser>,
    pub ifs: Vec<IfsUser>,
    pub flow: Vec<FlowUser>,
    /// Group object ID → member object IDs (for `transitiveMembers`).
    pub groups: HashMap<String, Vec<String>>,
}

/// Errors of the simulator's own API (not of the simulated services).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("certificate not accepted: {0}")]
    InvalidCertificate(String),
}

/// A running simulator. Dropping it leaves the server running until the
/// runtime ends; call [`Simulator::shutdown`] to stop it.
pub struct Simulator {
    addr: SocketAddr,
    state: Arc<SimState>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Simulator {
    /// Starts serving `tenant` on `listen` (port 0 picks a free port).
    pub async fn start(
        tenant: Tenant,
        faults: FaultPlan,
        listen: SocketAddr,
    ) -> std::io::Result<Simulator> {
        Self::start_with_settings(tenant, faults, SimSettings::default(), listen).await
    }

    /// [`Simulator::start`] with non-default behaviour switches.
    pub async fn start_with_settings(
        tenant: Tenant,
        faults: FaultPlan,
        settings: SimSettings,
        listen: SocketAddr,
    ) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let host = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let base_url = format!("http://{}", SocketAddr::new(host, addr.port()));
        let state = Arc::new(SimState::new(base_url, tenant, faults, settings));
        let app = server::router(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "simulator server stopped with an error");
            }
        });
        Ok(Simulator {
            addr,
            state,
            stop: Some(stop),
            task,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT` (a loopback host when listening on all addresses).
    pub fn base_url(&self) -> String {
        self.state.base_url.clone()
    }

    /// A complete idrecon configuration pointing at this simulator.
    pub fn config_toml(&self, store_url: &str) -> String {
        config::render_config_toml(&self.state.base_url, store_url)
    }

    /// A handle for inspecting and changing the simulated directories.
    pub fn handle(&self) -> SimHandle {
        SimHandle {
            state: self.state.clone(),
        }
    }

    /// Stops accepting connections and waits (at most 5 s) for open ones.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

/// Shared access to a running simulator's state: mutations between runs and
/// inspection of what clients did.
#[derive(Clone)]
pub struct SimHandle {
    state: Arc<SimState>,
}

impl SimHandle {
    /// Changes Azure users; every difference is recorded for `/users/delta`
    /// (removed users appear with `@removed.reason = deleted`).
    pub fn update_azure(&self, f: impl FnOnce(&mut Vec<AadUser>)) {
        write(&self.state.azure).update(f);
    }

    /// Soft-deletes an Azure user (`@removed.reason = changed`); false if unknown.
    pub fn soft_delete_azure(&self, id: &str) -> bool {
        write(&self.state.azure).soft_delete(id)
    }

    /// Restores a soft-deleted Azure user; false if not in the recycle bin.
    pub fn restore_azure(&self, id: &str) -> bool {
        write(&self.state.azure).restore(id)
    }

    pub fn update_ifs(&self, f: impl FnOnce(&mut Vec<IfsUser>)) {
        let mut ifs = write(&self.state.ifs);
        let mut users = std::mem::take(&mut ifs.users);
        f(&mut users);
        *ifs = IfsStore::new(users);
    }

    pub fn update_flow(&self, f: impl FnOnce(&mut Vec<FlowUser>)) {
        write(&self.state.flow).replace(f);
    }

    /// Replaces group memberships (group ID → member object IDs).
    pub fn update_groups(&self, f: impl FnOnce(&mut HashMap<String, Vec<String>>)) {
        let mut groups = write(&self.state.groups);
        f(&mut groups);
        let normalised = std::mem::take(&mut *groups)
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        *groups = normalised;
    }

    pub fn azure_users(&self) -> Vec<AadUser> {
        read(&self.state.azure).users.clone()
    }

    pub fn ifs_users(&self) -> Vec<IfsUser> {
        read(&self.state.ifs).users.clone()
    }

    pub fn flow_users(&self) -> Vec<FlowUser> {
        read(&self.state.flow).users.clone()
    }

    /// Successful renames of the Flow user now or formerly known as `user_id`.
    pub fn rename_count(&self, user_id: &str) -> u64 {
        read(&self.state.flow).counts_for(user_id).renames
    }

    /// Successful deactivations of the Flow user now or formerly known as `user_id`.
    pub fn deactivate_count(&self, user_id: &str) -> u64 {
        read(&self.state.flow).counts_for(user_id).deactivations
    }

    /// Totals of successful (renames, deactivations).
    pub fn write_counts(&self) -> (u64, u64) {
        let flow = read(&self.state.flow);
        flow.counts
            .values()
            .fold((0, 0), |(r, d), c| (r + c.renames, d + c.deactivations))
    }

    /// Every successful Flow write, in order.
    pub fn flow_writes(&self) -> Vec<FlowWrite> {
        read(&self.state.flow).writes.clone()
    }

    /// The bodies of every accepted `sendMail`, as posted.
    pub fn sent_mail(&self) -> Vec<serde_json::Value> {
        lock(&self.state.mail)
            .iter()
            .map(|m| m.body.clone())
            .collect()
    }

    /// Accepted `sendMail` requests with their sender.
    pub fn sent_mail_with_sender(&self) -> Vec<SentMail> {
        lock(&self.state.mail).clone()
    }

    /// Replaces the fault plan (counts start afresh).
    pub fn set_faults(&self, faults: FaultPlan) {
        self.state.set_faults(faults);
    }

    /// Every delta and skip token handed out so far answers `410 syncStateNotFound`.
    pub fn expire_delta_tokens(&self) {
        *lock(&self.state.delta_epoch) += 1;
    }

    /// Moves the simulated clock forward: delta tokens older than
    /// `SimSettings::graph_delta_token_max_age` then answer `410
    /// syncStateNotFound`. Access tokens keep real time.
    pub fn advance_clock(&self, by: Duration) {
        *lock(&self.state.clock_offset) += by;
    }

    /// The simulated time in Unix seconds.
    pub fn now_secs(&self) -> u64 {
        self.state.now_secs()
    }

    /// Forgets every issued access token (Azure and IFS).
    pub fn revoke_access_tokens(&self) {
        *lock(&self.state.azure_tokens) = Default::default();
        *lock(&self.state.ifs_tokens) = Default::default();
    }

    /// Every access token issued since start (Azure and IFS, in order of
    /// issue per authority; revoked ones included until revoked), so tests
    /// can make sure none of them shows up in logs or output.
    pub fn issued_access_tokens(&self) -> Vec<String> {
        let mut tokens = lock(&self.state.azure_tokens).issued().to_vec();
        tokens.extend_from_slice(lock(&self.state.ifs_tokens).issued());
        tokens
    }

    /// Requests whose path starts with `prefix` (e.g. `/graph/v1.0/users`, `/flow`).
    pub fn request_count(&self, prefix: &str) -> u64 {
        lock(&self.state.requests_by_path)
            .iter()
            .filter(|(path, _)| path.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn settings(&self) -> SimSettings {
        self.state.settings()
    }

    pub fn update_settings(&self, f: impl FnOnce(&mut SimSettings)) {
        f(&mut write(&self.state.settings));
    }

    /// Registers the app's certificate (PEM; other blocks such as the key
    /// are ignored). From then on client assertions must carry its
    /// `x5t#S256` and a signature that verifies with its key.
    pub fn register_certificate(&self, pem: &str) -> Result<(), SimError> {
        let cert = assertion::register_certificate(pem).map_err(SimError::InvalidCertificate)?;
        write(&self.state.certificates).push(cert);
        Ok(())
    }
}

/// `idrecon sim`: serves `tenant` on `listen` with `faults` (and the app
/// certificates given as PEM text registered), prints a ready configuration
/// to stdout and serves until Ctrl-C. `expected_findings` is what the
/// generator promised, when the tenant was generated.
pub async fn serve_standalone(
    listen: SocketAddr,
    tenant: Tenant,
    expected_findings: Option<usize>,
    faults: FaultPlan,
    certificates: &[String],
) -> anyhow::Result<()> {
    let counts = (tenant.azure.len(), tenant.ifs.len(), tenant.flow.len());
    let sim = Simulator::start(tenant, faults.clone(), listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    for pem in certificates {
        sim.handle()
            .register_certificate(pem)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    // The configuration is a convenience; serving is the point. A reader
    // that closed its end of the pipe (or a full disk behind a redirect)
    // must not end the simulator, as `println!` would by panicking.
    let config = sim.config_toml("sqlite://idrecon-sim.db");
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{config}").and_then(|()| stdout.flush()) {
        tracing::warn!(error = %e, "cannot print the configuration to stdout; serving anyway");
    }
    drop(stdout);
    let expected = expected_findings
        .map(|n| format!("; {n} expected findings"))
        .unwrap_or_default();
    let _ = writeln!(
        std::io::stderr(),
        "simulator listening on {} ({} Azure, {} IFS, {} Flow users{expected}; faults: {}). Ctrl-C stops it.",
        sim.base_url(),
        counts.0,
        counts.1,
        counts.2,
        faults
    );
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| anyhow::anyhow!("cannot wait for Ctrl-C: {e}"))?;
    sim.shutdown().await;
    Ok(())
}
