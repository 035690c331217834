//! The simulator's fixed credentials, its behaviour switches and the
//! idrecon configuration that points at it.

use std::time::Duration;

/// Azure AD tenant the simulator answers for (its GUID form works too).
pub const TENANT: &str = "contoso.onmicrosoft.com";
/// The same tenant as a GUID.
pub const TENANT_GUID: &str = "72f988bf-0000-4000-8000-00000000c0de";
/// The Azure app registration idrecon signs in as.
pub const AZURE_CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
/// Its client secret.
pub const AZURE_CLIENT_SECRET: &str = "sim-azure-client-secret";
/// IFS IAM realm (namespace) of the simulated IFS.
pub const IFS_REALM: &str = "prod";
/// IFS IAM client with "Service Accounts" enabled.
pub const IFS_CLIENT_ID: &str = "NC_Flow_Reconciler";
/// Its client secret.
pub const IFS_CLIENT_SECRET: &str = "sim-ifs-client-secret";
/// Flow machine user for the Flow endpoint's basic auth.
pub const FLOW_USERNAME: &str = "svc_idrecon";
/// Its password.
pub const FLOW_PASSWORD: &str = "sim-flow-password";
/// A mailbox `sendMail` accepts as sender besides every Azure user with a mail.
pub const MAIL_SENDER: &str = "idrecon@contoso.com";
/// Where the generated configuration sends reports.
pub const MAIL_RECIPIENT: &str = "iam-admins@contoso.com";
/// Path of the IFS users projection below `{base}/ifs`.
pub const IFS_USERS_PATH: &str = "main/ifsapplications/projection/v1/UserHandling.svc/Users";

/// How IFS renders `Active`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IfsActiveFormat {
    /// JSON `true` / `false`.
    Bool,
    /// The enum strings `"TRUE"` / `"FALSE"`.
    Text,
    /// Per user (decided by the identity), so one listing has both.
    Mixed,
}

/// How IFS pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IfsPaging {
    /// Client-driven `$top`/`$skip`; no `@odata.nextLink`.
    Skip,
    /// Server-driven: pages of at most `ifs_max_page_size` with `@odata.nextLink`.
    NextLink,
}

/// Behaviour switches of a running simulator (`SimHandle::update_settings`).
#[derive(Clone, Debug, PartialEq)]
pub struct SimSettings {
    /// Lifetime of Azure access tokens (`expires_in` 3599 by default).
    pub azure_token_lifetime: Duration,
    /// Lifetime of IFS IAM access tokens (300 s by default).
    pub ifs_token_lifetime: Duration,
    /// Page size of `/users/delta`: the service's own, whatever `$top` or
    /// `Prefer: odata.maxpagesize` say (Graph does not support `$top` on
    /// users delta; its pages hold about 100–200 entries).
    pub graph_delta_page_size: usize,
    /// Every N-th user of a delta round is sent a second time (Graph may
    /// return the same user more than once in a round; the last one wins).
    /// 0: no replays.
    pub graph_delta_replay_every: usize,
    /// `@removed` entries of recently deleted users that an initial delta
    /// round carries besides every removal recorded so far (`@removed` can
    /// occur in any round, the first included).
    pub graph_delta_initial_removed: usize,
    /// Delta pages omit properties that were never set (no key) instead of
    /// sending `null`, as Graph does.
    pub graph_delta_omit_unset: bool,
    /// Age (of simulated time, see `SimHandle::advance_clock`) after which a
    /// delta token has expired and answers `410 syncStateNotFound`: Graph
    /// keeps delta tokens for 7 days.
    pub graph_delta_token_max_age: Duration,
    pub ifs_active_format: IfsActiveFormat,
    pub ifs_paging: IfsPaging,
    /// Largest IFS page (also used when the client sends no `$top` in
    /// next-link mode).
    pub ifs_max_page_size: usize,
    /// Users per page of the Flow endpoint.
    pub flow_page_size: usize,
    /// Flow compares user IDs case-insensitively (rename 409 / lookups).
    pub flow_ids_case_insensitive: bool,
    /// In `$skip` paging, serve at most this many users per page whatever
    /// `$top` asks, without a nextLink (a server's silent page cap).
    pub ifs_silent_page_cap: Option<usize>,
    /// Group members come back as `@odata.type` + `id` only, every other
    /// property null: the app has `GroupMember.Read.All` but not `User.Read.All`.
    pub group_members_id_only: bool,
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            azure_token_lifetime: Duration::from_secs(3599),
            ifs_token_lifetime: Duration::from_secs(300),
            graph_delta_page_size: 100,
            graph_delta_replay_every: 50,
            graph_delta_initial_removed: 3,
            graph_delta_omit_unset: true,
            graph_delta_token_max_age: Duration::from_secs(7 * 24 * 3600),
            ifs_active_format: IfsActiveFormat::Mixed,
            ifs_paging: IfsPaging::Skip,
            ifs_max_page_size: 5000,
            flow_page_size: 500,
            flow_ids_case_insensitive: true,
            ifs_silent_page_cap: None,
            group_members_id_only: false,
        }
    }
}

/// A complete idrecon configuration (docs/contract.md keys) for a simulator at
/// `base` (e.g. `http://127.0.0.1:8080`), storing runs at `store_url`.
pub fn render_config_toml(base: &str, store_url: &str) -> String {
    let insecure = if is_loopback_base(base) {
        ""
    } else {
        "allow_insecure_http = true\n"
    };
    let q = toml_string;
    format!(
        r#"# idrecon configuration for the built-in simulator at {base}
# (credentials are the simulator's fixed test values, see docs/simulator.md)

[store]
url = {store}

[azure]
tenant_id = {tenant}
client_id = {azure_client}
client_secret = {azure_secret}
login_url = {login}
graph_url = {graph}
include_guests = false
{insecure}
[ifs]
url = {ifs}
issuer_url = {issuer}
client_id = {ifs_client}
client_secret = {ifs_secret}
users_path = {users_path}
directory_id_field = "WebUser"
page_size = 1000
{insecure}
[flow]
source = "http"
url = {flow}
username = {flow_user}
password = {flow_password}
{insecure}
[matching]
case_sensitive = false

[fix]
enabled = false
max_changes = 25
max_change_percent = 5.0
deactivate_orphans = false

[schedule]
cron = "0 2 * * *"
timezone = "Europe/Stockholm"

[report]
send = "on_findings"
to = [{to}]
from = {from}
transport = "graph"
"#,
        store = q(store_url),
        tenant = q(TENANT),
        azure_client = q(AZURE_CLIENT_ID),
        azure_secret = q(AZURE_CLIENT_SECRET),
        login = q(&format!("{base}/azure-login")),
        graph = q(&format!("{base}/graph")),
        ifs = q(&format!("{base}/ifs")),
        issuer = q(&format!("{base}/ifs/auth/realms/{IFS_REALM}")),
        ifs_client = q(IFS_CLIENT_ID),
        ifs_secret = q(IFS_CLIENT_SECRET),
        users_path = q(IFS_USERS_PATH),
        flow = q(&format!("{base}/flow")),
        flow_user = q(FLOW_USERNAME),
        flow_password = q(FLOW_PASSWORD),
        to = q(MAIL_RECIPIENT),
        from = q(MAIL_SENDER),
    )
}

/// A TOML basic string with everything escaped that must be.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn is_loopback_base(base: &str) -> bool {
    url::Url::parse(base)
        .ok()
        .and_then(|u| {
            u.host().map(|h| match h {
                url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
                url::Host::Ipv4(ip) => ip.is_loopback(),
                url::Host::Ipv6(ip) => ip.is_loopback(),
            })
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_valid_toml_with_contract_keys() {
        let text = render_config_toml("http://127.0.0.1:4000", "sqlite:///tmp/x \"y\".db");
        let value: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(
            value["azure"]["login_url"].as_str(),
            Some("http://127.0.0.1:4000/azure-login")
        );
        assert_eq!(
            value["ifs"]["issuer_url"].as_str(),
            Some("http://127.0.0.1:4000/ifs/auth/realms/prod")
        );
        assert_eq!(value["flow"]["source"].as_str(), Some("http"));
        assert_eq!(
            value["store"]["url"].as_str(),
            Some("sqlite:///tmp/x \"y\".db")
        );
        assert!(value["azure"].get("allow_insecure_http").is_none());
    }

    #[test]
    fn non_loopback_base_allows_insecure_http() {
        let text = render_config_toml("http://10.1.2.3:4000", "sqlite://x.db");
        let value: toml::Value = toml::from_str(&text).unwrap();
        for section in ["azure", "ifs", "flow"] {
            assert_eq!(value[section]["allow_insecure_http"].as_bool(), Some(true));
        }
    }
}
