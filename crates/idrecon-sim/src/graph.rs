//! Simulated Microsoft Graph (`/graph/v1.0/…`): user listing, delta,
//! transitive group members, single user; `sendMail` lives in `graph_mail`.
//!
//! Pages are serialised straight from the shared state under a read lock:
//! nothing is cloned per request but the page's own JSON.

use super::faults::{FaultKind, FaultTarget};
use super::graph_mail;
use super::server::{
    apply_early_fault, bearer, encode_query_value, error_response, listing_response, origin,
    parse_query, query_param, unsupported_option, ErrorShape, LateFault, Shared,
};
use super::state::{lock, read, AzureStore, SimState, TokenProblem};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use idrecon_core::model::AadUser;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/graph/v1.0/users", get(list_users))
        .route("/graph/v1.0/users/delta", get(delta))
        .route("/graph/v1.0/users/delta()", get(delta))
        .route("/graph/v1.0/users/{key}", get(single_user))
        .route(
            "/graph/v1.0/users/{sender}/sendMail",
            post(graph_mail::send_mail),
        )
        .route(
            "/graph/v1.0/groups/{id}/transitiveMembers/microsoft.graph.user",
            get(group_members_cast),
        )
        .route(
            "/graph/v1.0/groups/{id}/transitiveMembers",
            get(group_members_all),
        )
}

/// The user properties the simulator knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GraphProp {
    Id,
    UserPrincipalName,
    Mail,
    DisplayName,
    AccountEnabled,
    EmployeeId,
    OnPremisesSamAccountName,
    UserType,
    GivenName,
    Surname,
    JobTitle,
    BusinessPhones,
    MobilePhone,
    OfficeLocation,
    PreferredLanguage,
}

impl GraphProp {
    const ALL: [GraphProp; 15] = [
        GraphProp::Id,
        GraphProp::UserPrincipalName,
        GraphProp::Mail,
        GraphProp::DisplayName,
        GraphProp::AccountEnabled,
        GraphProp::EmployeeId,
        GraphProp::OnPremisesSamAccountName,
        GraphProp::UserType,
        GraphProp::GivenName,
        GraphProp::Surname,
        GraphProp::JobTitle,
        GraphProp::BusinessPhones,
        GraphProp::MobilePhone,
        GraphProp::OfficeLocation,
        GraphProp::PreferredLanguage,
    ];

    /// What Graph returns without `$select`.
    const DEFAULT: [GraphProp; 11] = [
        GraphProp::BusinessPhones,
        GraphProp::DisplayName,
        GraphProp::GivenName,
        GraphProp::JobTitle,
        GraphProp::Mail,
        GraphProp::MobilePhone,
        GraphProp::OfficeLocation,
        GraphProp::PreferredLanguage,
        GraphProp::Surname,
        GraphProp::UserPrincipalName,
        GraphProp::Id,
    ];

    fn name(self) -> &'static str {
        match self {
            GraphProp::Id => "id",
            GraphProp::UserPrincipalName => "userPrincipalName",
            GraphProp::Mail => "mail",
            GraphProp::DisplayName => "displayName",
            GraphProp::AccountEnabled => "accountEnabled",
            GraphProp::EmployeeId => "employeeId",
            GraphProp::OnPremisesSamAccountName => "onPremisesSamAccountName",
            GraphProp::UserType => "userType",
            GraphProp::GivenName => "givenName",
            GraphProp::Surname => "surname",
            GraphProp::JobTitle => "jobTitle",
            GraphProp::BusinessPhones => "businessPhones",
            GraphProp::MobilePhone => "mobilePhone",
            GraphProp::OfficeLocation => "officeLocation",
            GraphProp::PreferredLanguage => "preferredLanguage",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

/// `$select` → properties (`id` always first, as Graph always returns it).
pub(crate) fn parse_select(raw: Option<&str>) -> Result<Vec<GraphProp>, String> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(GraphProp::DEFAULT.to_vec());
    };
    let mut props = vec![GraphProp::Id];
    for name in raw.split(',').map(str::trim) {
        let prop = GraphProp::parse(name).ok_or_else(|| {
            format!("Parsing OData Select and Expand failed: Could not find a property named '{name}' on type 'microsoft.graph.user'.")
        })?;
        if !props.contains(&prop) {
            props.push(prop);
        }
    }
    Ok(props)
}

fn select_names(props: &[GraphProp]) -> String {
    props.iter().map(|p| p.name()).collect::<Vec<_>>().join(",")
}

fn parse_select_names(names: &str) -> Vec<GraphProp> {
    names.split(',').filter_map(GraphProp::parse).collect()
}

/// A user rendered with only the selected properties.
#[derive(Clone, Copy)]
pub(crate) struct SelectedUser<'a> {
    pub user: &'a AadUser,
    pub props: &'a [GraphProp],
    pub odata_type: bool,
    /// Leave out properties that were never set (delta pages) instead of
    /// sending `null` (listings).
    pub omit_unset: bool,
}

impl Serialize for SelectedUser<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let u = self.user;
        let mut map = serializer.serialize_map(None)?;
        if self.odata_type {
            map.serialize_entry("@odata.type", "#microsoft.graph.user")?;
        }
        let display = u.display_name();
        for &prop in self.props {
            let key = prop.name();
            let text = match prop {
                GraphProp::Id => Some(u.id()),
                GraphProp::UserPrincipalName => Some(u.user_principal_name()),
                GraphProp::AccountEnabled => {
                    map.serialize_entry(key, &u.account_enabled())?;
                    continue;
                }
                GraphProp::BusinessPhones => {
                    map.serialize_entry(key, &[] as &[&str])?;
                    continue;
                }
                GraphProp::Mail => u.mail(),
                GraphProp::DisplayName => display,
                GraphProp::EmployeeId => u.employee_id(),
                GraphProp::OnPremisesSamAccountName => u.on_premises_sam_account_name(),
                GraphProp::UserType => u.user_type(),
                GraphProp::GivenName => display.and_then(|d| d.split(' ').next()),
                GraphProp::Surname => display.and_then(|d| d.split_once(' ').map(|x| x.1)),
                GraphProp::JobTitle
                | GraphProp::MobilePhone
                | GraphProp::OfficeLocation
                | GraphProp::PreferredLanguage => None,
            };
            if text.is_some() || !self.omit_unset {
                map.serialize_entry(key, &text)?;
            }
        }
        map.end()
    }
}

/// A group member as Graph shows it to an app with `GroupMember.Read.All`
/// but without `User.Read.All`: `@odata.type` and `id`, every other
/// selected property null (docs/simulator.md, "Group members").
struct IdOnlyMember<'a> {
    id: &'a str,
    props: &'a [GraphProp],
}

impl Serialize for IdOnlyMember<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("@odata.type", "#microsoft.graph.user")?;
        for &prop in self.props {
            match prop {
                GraphProp::Id => map.serialize_entry("id", self.id)?,
                other => map.serialize_entry(other.name(), &None::<&str>)?,
            }
        }
        map.end()
    }
}

/// One entry of a delta page.
#[derive(Clone, Copy)]
enum DeltaItem<'a> {
    User(SelectedUser<'a>),
    Removed { id: &'a str, reason: &'static str },
}

impl Serialize for DeltaItem<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            DeltaItem::User(u) => u.serialize(serializer),
            DeltaItem::Removed { id, reason } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("id", id)?;
                map.serialize_entry("@removed", &serde_json::json!({ "reason": reason }))?;
                map.end()
            }
        }
    }
}

#[derive(Serialize)]
struct PageBody<T: Serialize> {
    #[serde(rename = "@odata.context")]
    context: String,
    #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink", skip_serializing_if = "Option::is_none")]
    delta_link: Option<String>,
    value: T,
}

fn context(origin: &str, props: &[GraphProp]) -> String {
    format!(
        "{origin}/graph/v1.0/$metadata#users({})",
        select_names(props)
    )
}

fn encode_token(plain: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(plain.as_bytes())
}

fn decode_token(token: &str) -> Option<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

fn bad_request(code: &str, message: &str) -> Response {
    error_response(ErrorShape::Graph, StatusCode::BAD_REQUEST, code, message)
}

/// Checks the bearer token against the tokens Azure login issued.
pub(crate) fn check_auth(state: &SimState, headers: &HeaderMap) -> Result<(), Response> {
    let problem = match lock(&state.azure_tokens).check(bearer(headers)) {
        Ok(()) => return Ok(()),
        Err(p) => p,
    };
    let message = match problem {
        TokenProblem::Missing => "Access token is empty.",
        TokenProblem::Unknown => "Access token validation failure. Invalid audience.",
        TokenProblem::Expired => "Lifetime validation failed, the token is expired.",
    };
    let mut response = error_response(
        ErrorShape::Graph,
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
        ),
    );
    Err(response)
}

/// Refuses query options the simulator does not implement.
fn check_options(query: &[(String, String)]) -> Result<(), Response> {
    match unsupported_option(
        query,
        &["$select", "$top", "$skiptoken", "$deltatoken"],
    ) {
        None => Ok(()),
        Some(option) => Err(bad_request(
            "Request_UnsupportedQuery",
            &format!("Query option '{option}' is not supported by the simulator (only $select, $top and the paging tokens)."),
        )),
    }
}

/// `$top`: default 100, 1–999.
fn parse_top(raw: Option<&str>) -> Result<usize, Response> {
    let Some(raw) = raw else { return Ok(100) };
    match raw.trim().parse::<usize>() {
        Ok(n) if (1..=999).contains(&n) => Ok(n),
        _ => Err(bad_request(
            "Request_UnsupportedQuery",
            &format!("Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive."),
        )),
    }
}

/// Offset and page number from a listing `$skiptoken` of the given kind.
fn parse_list_token(raw: Option<&str>, kind: &str) -> Result<(usize, u32), Response> {
    let Some(raw) = raw else { return Ok((0, 1)) };
    let invalid = || bad_request("Request_BadRequest", "Invalid $skiptoken value.");
    let plain = decode_token(raw).ok_or_else(invalid)?;
    let mut parts = plain.split('|');
    if parts.next() != Some(kind) {
        return Err(invalid());
    }
    let offset = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)?;
    let page = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)?;
    Ok((offset, page))
}

/// Runs the early faults for a listing page with the presented token.
async fn listing_faults(
    state: &Shared,
    headers: &HeaderMap,
    page: u32,
    delta_token_request: bool,
) -> Result<LateFault, Response> {
    let decision = state.fault_for_page(FaultTarget::Graph, page, |k| match k {
        FaultKind::ExpireDelta => delta_token_request,
        // Only a `$skiptoken` (a page after the first) can expire.
        FaultKind::ExpirePage => page > 1,
        _ => true,
    });
    let presented = bearer(headers).map(str::to_owned);
    apply_early_fault(decision, ErrorShape::Graph, || {
        if let Some(token) = presented {
            lock(&state.azure_tokens).expire(&token);
        }
    })
    .await
}

fn next_link(path: &str, select_raw: Option<&str>, top: usize, token: &str) -> String {
    let mut link = format!("{path}?");
    if let Some(select) = select_raw {
        link.push_str("$select=");
        link.push_str(&encode_query_value(select));
        link.push('&');
    }
    link.push_str(&format!("$top={top}&$skiptoken={}", encode_token(token)));
    link
}

/// The parts of a paged Graph listing request, checked.
struct ListingRequest {
    select_raw: Option<String>,
    props: Vec<GraphProp>,
    top: usize,
    offset: usize,
    page: u32,
}

/// Checks the bearer token and the query options of a paged listing
/// (`$select`, `$top`, `$skiptoken` of `kind`), answering errors in Graph's shape.
fn listing_request(
    state: &SimState,
    headers: &HeaderMap,
    raw: Option<&str>,
    kind: &str,
) -> Result<ListingRequest, Response> {
    check_auth(state, headers)?;
    let query = parse_query(raw);
    check_options(&query)?;
    let select_raw = query_param(&query, "$select");
    let props = parse_select(select_raw).map_err(|message| bad_request("BadRequest", &message))?;
    let top = parse_top(query_param(&query, "$top"))?;
    let (offset, page) = parse_list_token(query_param(&query, "$skiptoken"), kind)?;
    Ok(ListingRequest {
        select_raw: select_raw.map(str::to_string),
        props,
        top,
        offset,
        page,
    })
}

async fn list_users(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let ListingRequest {
        select_raw,
        props,
        top,
        offset,
        page,
    } = match listing_request(&state, &headers, raw.as_deref(), "u") {
        Ok(l) => l,
        Err(r) => return r,
    };
    let select_raw = select_raw.as_deref();
    let late = match listing_faults(&state, &headers, page, false).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let origin = origin(&headers, &state);
    let body = {
        let azure = read(&state.azure);
        let users: &[AadUser] = if late.empty { &[] } else { &azure.users };
        let start = offset.min(users.len());
        let end = offset.saturating_add(top).min(users.len());
        let next = (end < users.len()).then(|| {
            next_link(
                &format!("{origin}/graph/v1.0/users"),
                select_raw,
                top,
                &format!("u|{end}|{}", page + 1),
            )
        });
        let value: Vec<SelectedUser> = users[start..end]
            .iter()
            .map(|user| SelectedUser {
                user,
                props: &props,
                odata_type: false,
                omit_unset: false,
            })
            .collect();
        serde_json::to_vec(&PageBody {
            context: context(&origin, &props),
            next_link: next,
            delta_link: None,
            value,
        })
        .unwrap_or_default()
    };
    listing_response(body, late)
}

async fn group_members_cast(
    state: State<Shared>,
    id: Path<String>,
    headers: HeaderMap,
    raw: RawQuery,
) -> Response {
    group_members(state, id, headers, raw, "microsoft.graph.user").await
}

async fn group_members_all(
    state: State<Shared>,
    id: Path<String>,
    headers: HeaderMap,
    raw: RawQuery,
) -> Response {
    group_members(state, id, headers, raw, "").await
}

async fn group_members(
    State(state): State<Shared>,
    Path(group_id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    cast: &str,
) -> Response {
    let ListingRequest {
        select_raw,
        props,
        top,
        offset,
        page,
    } = match listing_request(&state, &headers, raw.as_deref(), "g") {
        Ok(l) => l,
        Err(r) => return r,
    };
    let select_raw = select_raw.as_deref();
    if !read(&state.groups).contains_key(&group_id.to_ascii_lowercase()) {
        return error_response(
            ErrorShape::Graph,
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{group_id}' does not exist or one of its queried reference-property objects are not present."),
        );
    }
    let late = match listing_faults(&state, &headers, page, false).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let origin = origin(&headers, &state);
    let body = {
        let groups = read(&state.groups);
        let azure = read(&state.azure);
        let members: &[String] = match groups.get(&group_id.to_ascii_lowercase()) {
            Some(m) if !late.empty => m,
            _ => &[],
        };
        let start = offset.min(members.len());
        let end = offset.saturating_add(top).min(members.len());
        let path = if cast.is_empty() {
            format!("{origin}/graph/v1.0/groups/{group_id}/transitiveMembers")
        } else {
            format!("{origin}/graph/v1.0/groups/{group_id}/transitiveMembers/{cast}")
        };
        let next = (end < members.len())
            .then(|| next_link(&path, select_raw, top, &format!("g|{end}|{}", page + 1)));
        if state.settings().group_members_id_only {
            let value: Vec<IdOnlyMember> = members[start..end]
                .iter()
                .filter_map(|id| azure.find_by_id(id))
                .map(|i| IdOnlyMember {
                    id: azure.users[i].id(),
                    props: &props,
                })
                .collect();
            let body = serde_json::to_vec(&PageBody {
                context: context(&origin, &props),
                next_link: next,
                delta_link: None,
                value,
            })
            .unwrap_or_default();
            return listing_response(body, late);
        }
        let value: Vec<SelectedUser> = members[start..end]
            .iter()
            .filter_map(|id| azure.find_by_id(id))
            .map(|i| SelectedUser {
                user: &azure.users[i],
                props: &props,
                odata_type: cast.is_empty(),
                omit_unset: false,
            })
            .collect();
        serde_json::to_vec(&PageBody {
            context: context(&origin, &props),
            next_link: next,
            delta_link: None,
            value,
        })
        .unwrap_or_default()
    };
    listing_response(body, late)
}

/// Where a delta request starts.
enum DeltaStart {
    /// No token: a full initial round.
    Initial,
    /// `$deltatoken=latest`: no users, just a delta link for "from now on".
    Latest,
    /// A delta link: changes since a version.
    Changes { since: u64, props: Vec<GraphProp> },
    /// A next link inside a round.
    Resume(DeltaCursor),
}

struct DeltaCursor {
    since: Option<u64>,
    upto: u64,
    offset: usize,
    page: u32,
    size: usize,
    props: Vec<GraphProp>,
}

/// How a round is shaped (from `SimSettings` and the simulated clock).
struct DeltaShape {
    epoch: u64,
    /// Simulated Unix time the delta link of this round is issued at.
    now: u64,
    replay_every: usize,
    initial_removed: usize,
    omit_unset: bool,
}

/// The answer to an expired delta token: `410 Gone`, code
/// `syncStateNotFound`, with a `Location` header naming a fresh initial
/// round (docs/simulator.md, "Delta").
fn delta_expired(fresh_round: &str) -> Response {
    let mut response = error_response(
        ErrorShape::Graph,
        StatusCode::GONE,
        "syncStateNotFound",
        "The sync state generation is not found. Please restart the sync without a state token.",
    );
    if let Ok(value) = HeaderValue::from_str(fresh_round) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn invalid_skiptoken() -> Response {
    bad_request("Request_BadRequest", "Invalid $skiptoken value.")
}

async fn delta(
    State(state): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = check_auth(&state, &headers) {
        return r;
    }
    let query = parse_query(raw.as_deref());
    if let Err(r) = check_options(&query) {
        return r;
    }
    let settings = state.settings();
    let shape = DeltaShape {
        epoch: *lock(&state.delta_epoch),
        now: state.now_secs(),
        replay_every: settings.graph_delta_replay_every,
        initial_removed: settings.graph_delta_initial_removed,
        omit_unset: settings.graph_delta_omit_unset,
    };
    let epoch = shape.epoch;
    let origin = origin(&headers, &state);
    let path = format!("{origin}{}", uri.path());
    let select_raw = query_param(&query, "$select");

    let start = if let Some(token) = query_param(&query, "$deltatoken") {
        if token == "latest" {
            DeltaStart::Latest
        } else {
            // l|epoch|version|issued|select
            let parts: Vec<String> = decode_token(token)
                .map(|t| t.split('|').map(str::to_owned).collect())
                .unwrap_or_default();
            let props = parts.get(4).map(|p| parse_select_names(p));
            let fresh = match &props {
                Some(p) => format!("{path}?$select={}", encode_query_value(&select_names(p))),
                None => path.clone(),
            };
            let max_age = settings.graph_delta_token_max_age.as_secs();
            let valid = parts.len() == 5
                && parts[0] == "l"
                && parts[1].parse::<u64>().ok() == Some(epoch)
                && parts[3]
                    .parse::<u64>()
                    .is_ok_and(|issued| shape.now.saturating_sub(issued) <= max_age);
            match (valid, parts.get(2).and_then(|v| v.parse().ok()), props) {
                (true, Some(since), Some(props)) => DeltaStart::Changes { since, props },
                _ => return delta_expired(&fresh),
            }
        }
    } else if let Some(token) = query_param(&query, "$skiptoken") {
        let parts: Vec<String> = decode_token(token)
            .map(|t| t.split('|').map(str::to_owned).collect())
            .unwrap_or_default();
        if parts.len() != 8 || parts[0] != "d" {
            return invalid_skiptoken();
        }
        if parts[1].parse::<u64>().ok() != Some(epoch) {
            return delta_expired(&path);
        }
        let cursor = (|| {
            Some(DeltaCursor {
                since: if parts[2] == "-" {
                    None
                } else {
                    Some(parts[2].parse().ok()?)
                },
                upto: parts[3].parse().ok()?,
                offset: parts[4].parse().ok()?,
                page: parts[5].parse().ok()?,
                size: parts[6].parse().ok()?,
                props: parse_select_names(&parts[7]),
            })
        })();
        match cursor {
            Some(c) => DeltaStart::Resume(c),
            None => return invalid_skiptoken(),
        }
    } else {
        DeltaStart::Initial
    };

    // Graph's own page size: `$top` and `Prefer: odata.maxpagesize` are
    // not supported on users delta and change nothing.
    let size = match &start {
        DeltaStart::Resume(c) => c.size,
        _ => settings.graph_delta_page_size.clamp(1, 999),
    };
    let select_props = match parse_select(select_raw) {
        Ok(p) => p,
        Err(message) => return bad_request("BadRequest", &message),
    };
    let page = match &start {
        DeltaStart::Resume(c) => c.page,
        _ => 1,
    };
    let is_delta_token = matches!(start, DeltaStart::Changes { .. });
    let late = match listing_faults(&state, &headers, page, is_delta_token).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    if late.expire_delta {
        return delta_expired(&path);
    }

    let body = {
        let azure = read(&state.azure);
        let cursor = match start {
            DeltaStart::Initial => DeltaCursor {
                since: None,
                upto: azure.version,
                offset: 0,
                page: 1,
                size,
                props: select_props,
            },
            DeltaStart::Latest => DeltaCursor {
                since: Some(azure.version),
                upto: azure.version,
                offset: 0,
                page: 1,
                size,
                props: select_props,
            },
            DeltaStart::Changes { since, props } => DeltaCursor {
                since: Some(since),
                upto: azure.version,
                offset: 0,
                page: 1,
                size,
                props,
            },
            DeltaStart::Resume(c) => c,
        };
        delta_page(&azure, &cursor, &shape, &origin, &path, late.empty)
    };
    listing_response(body, late)
}

/// Object IDs of users deleted shortly before the simulation started: an
/// initial round reports them as `@removed` although the client never saw them.
fn recently_deleted_id(n: usize) -> String {
    format!("0de1e7ed-0000-4000-8000-{n:012}")
}

/// The `i`-th entry of a sequence of `n` users in which every `every`-th
/// user is followed by a replay of itself: (user index, is replay).
fn with_replays(i: usize, every: usize) -> usize {
    if every == 0 {
        return i;
    }
    let (block, rest) = (i / (every + 1), i % (every + 1));
    block * every + rest.min(every - 1)
}

/// How many entries `n` users take with replays.
fn replayed_len(n: usize, every: usize) -> usize {
    n + n.checked_div(every).unwrap_or(0)
}

/// Serialises one page of a delta round.
fn delta_page(
    azure: &AzureStore,
    cursor: &DeltaCursor,
    shape: &DeltaShape,
    origin: &str,
    path: &str,
    empty: bool,
) -> Vec<u8> {
    let props = &cursor.props;
    let user = |i: usize| {
        DeltaItem::User(SelectedUser {
            user: &azure.users[i],
            props,
            odata_type: false,
            omit_unset: shape.omit_unset,
        })
    };
    let every = shape.replay_every;
    let start = cursor.offset;
    let (items, total): (Vec<DeltaItem>, usize) =
        if empty {
            (Vec::new(), 0)
        } else {
            match cursor.since {
                None => {
                    // Removals first (recently deleted users, then every
                    // recorded removal), then every user with replays.
                    let synthetic: Vec<String> = (1..=shape.initial_removed)
                        .map(recently_deleted_id)
                        .collect();
                    let removed: Vec<DeltaItem> = synthetic
                        .iter()
                        .map(|id| DeltaItem::Removed {
                            id,
                            reason: "deleted",
                        })
                        .chain(
                            azure
                                .tombstones
                                .iter()
                                .filter(|t| t.version <= cursor.upto)
                                .map(|t| DeltaItem::Removed {
                                    id: &t.id,
                                    reason: t.reason.as_str(),
                                }),
                        )
                        .collect();
                    let users = replayed_len(azure.users.len(), every);
                    let total = removed.len() + users;
                    let end = start.saturating_add(cursor.size).min(total);
                    let items = (start.min(end)..end)
                        .map(|e| match removed.get(e) {
                            Some(item) => *item,
                            None => user(with_replays(e - removed.len(), every)),
                        })
                        .collect();
                    // Serialised here: the items borrow `synthetic`.
                    return page_bytes(items, total, cursor, shape, origin, path);
                }
                Some(since) => {
                    // Every change in (since, upto], in the order it happened;
                    // a present user's version is newer than any removal of it,
                    // so replaying users (never removals) keeps "last one wins".
                    let in_range = |v: u64| v > since && v <= cursor.upto;
                    let mut events: Vec<(u64, DeltaItem)> =
                        azure
                            .versions
                            .iter()
                            .enumerate()
                            .filter(|(_, v)| in_range(**v))
                            .map(|(i, v)| (*v, user(i)))
                            .chain(azure.tombstones.iter().filter(|t| in_range(t.version)).map(
                                |t| {
                                    (
                                        t.version,
                                        DeltaItem::Removed {
                                            id: &t.id,
                                            reason: t.reason.as_str(),
                                        },
                                    )
                                },
                            ))
                            .collect();
                    events.sort_by_key(|(v, _)| *v);
                    let mut all = Vec::with_capacity(events.len());
                    let mut users_seen = 0usize;
                    for (_, item) in events {
                        all.push(item);
                        if let DeltaItem::User(_) = item {
                            users_seen += 1;
                            if every > 0 && users_seen % every == 0 {
                                all.push(item);
                            }
                        }
                    }
                    let total = all.len();
                    let end = start.saturating_add(cursor.size).min(total);
                    let items = all
                        .into_iter()
                        .skip(start)
                        .take(end.saturating_sub(start))
                        .collect();
                    (items, total)
                }
            }
        };
    page_bytes(items, total, cursor, shape, origin, path)
}

/// A delta page's JSON: the items and the next or delta link.
fn page_bytes(
    items: Vec<DeltaItem>,
    total: usize,
    cursor: &DeltaCursor,
    shape: &DeltaShape,
    origin: &str,
    path: &str,
) -> Vec<u8> {
    let props = &cursor.props;
    let end = cursor.offset.saturating_add(cursor.size);
    let names = select_names(props);
    let epoch = shape.epoch;
    let (next_link, delta_link) = if end < total {
        let token = format!(
            "d|{epoch}|{}|{}|{end}|{}|{}|{names}",
            cursor.since.map(|s| s.to_string()).unwrap_or("-".into()),
            cursor.upto,
            cursor.page + 1,
            cursor.size,
        );
        (
            Some(format!("{path}?$skiptoken={}", encode_token(&token))),
            None,
        )
    } else {
        let token = format!("l|{epoch}|{}|{}|{names}", cursor.upto, shape.now);
        (
            None,
            Some(format!("{path}?$deltatoken={}", encode_token(&token))),
        )
    };
    serde_json::to_vec(&PageBody {
        context: context(origin, props),
        next_link,
        delta_link,
        value: items,
    })
    .unwrap_or_default()
}

async fn single_user(
    State(state): State<Shared>,
    Path(key): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = check_auth(&state, &headers) {
        return r;
    }
    let query = parse_query(raw.as_deref());
    if let Err(r) = check_options(&query) {
        return r;
    }
    let props = match parse_select(query_param(&query, "$select")) {
        Ok(p) => p,
        Err(message) => return bad_request("BadRequest", &message),
    };
    let origin = origin(&headers, &state);
    // The report sender is a mailbox (a user object in a real tenant) that
    // sendMail accepts; it is not one of the simulated people.
    if key.eq_ignore_ascii_case(super::config::MAIL_SENDER) {
        return super::server::json_response(
            StatusCode::OK,
            &serde_json::json!({
                "@odata.context": format!("{}/$entity", context(&origin, &props)),
                "id": "00000000-0000-4000-8000-0000000000ad",
                "mail": super::config::MAIL_SENDER,
            }),
        );
    }
    let value = {
        let azure = read(&state.azure);
        let index = azure.find_by_id(&key).or_else(|| {
            let wanted = key.to_lowercase();
            azure
                .users
                .iter()
                .position(|u| u.user_principal_name().to_lowercase() == wanted)
        });
        index.map(|i| {
            serde_json::to_value(SelectedUser {
                user: &azure.users[i],
                props: &props,
                odata_type: false,
                omit_unset: false,
            })
        })
    };
    match value {
        Some(Ok(serde_json::Value::Object(mut map))) => {
            map.insert(
                "@odata.context".into(),
                format!("{}/$entity", context(&origin, &props)).into(),
            );
            super::server::json_response(StatusCode::OK, &serde_json::Value::Object(map))
        }
        _ => error_response(
            ErrorShape::Graph,
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{key}' does not exist or one of its queried reference-property objects are not present."),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idrecon_core::model::AadUserFields;

    #[test]
    fn select_parsing() {
        assert_eq!(parse_select(None).unwrap().len(), GraphProp::DEFAULT.len());
        let p = parse_select(Some("mail, USERPRINCIPALNAME,mail")).unwrap();
        assert_eq!(
            p,
            vec![GraphProp::Id, GraphProp::Mail, GraphProp::UserPrincipalName]
        );
        assert!(parse_select(Some("id,frob"))
            .unwrap_err()
            .contains("'frob'"));
    }

    #[test]
    fn selected_user_has_only_selected_properties() {
        let user = AadUser::from(AadUserFields {
            id: "1".into(),
            user_principal_name: "a@x".into(),
            mail: None,
            display_name: Some("Åsa Öberg".into()),
            account_enabled: false,
            employee_id: None,
            on_premises_sam_account_name: Some("asa".into()),
            user_type: Some("Member".into()),
        });
        let props = parse_select(Some("accountEnabled,surname,mail")).unwrap();
        let v = serde_json::to_value(SelectedUser {
            user: &user,
            props: &props,
            odata_type: false,
            omit_unset: false,
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id":"1","accountEnabled":false,"surname":"Öberg","mail":null})
        );
    }
}
