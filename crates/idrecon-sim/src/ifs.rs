//! Simulated IFS Cloud: IFS IAM (Keycloak-style discovery and client
//! credentials) under `/ifs/auth/realms/{ns}` and the OData `Users` entity
//! set under `/ifs/main/ifsapplications/projection/v1/UserHandling.svc`.

use super::config::{IfsActiveFormat, IfsPaging, IFS_CLIENT_ID, IFS_CLIENT_SECRET, IFS_REALM};
use super::faults::{FaultKind, FaultTarget};
use super::ifs_filter::{self, Filter};
use super::server::{
    apply_early_fault, bearer, encode_query_value, error_response, form_value, json_response,
    listing_response, origin, parse_form, parse_query, query_param, unsupported_option, ErrorShape,
    Shared,
};
use super::state::{lock, read, TokenProblem};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use idrecon_core::model::IfsUser;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::json;

const USERS_PATH: &str = "/ifs/main/ifsapplications/projection/v1/UserHandling.svc/Users";

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/ifs/auth/realms/{realm}/.well-known/openid-configuration",
            get(discovery),
        )
        .route(
            "/ifs/auth/realms/{realm}/protocol/openid-connect/token",
            post(token),
        )
        .route(USERS_PATH, get(users))
}

/// Properties of the `Users` entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IfsProp {
    Identity,
    Description,
    WebUser,
    Active,
}

impl IfsProp {
    const ALL: [IfsProp; 4] = [
        IfsProp::Identity,
        IfsProp::Description,
        IfsProp::WebUser,
        IfsProp::Active,
    ];

    fn name(self) -> &'static str {
        match self {
            IfsProp::Identity => "Identity",
            IfsProp::Description => "Description",
            IfsProp::WebUser => "WebUser",
            IfsProp::Active => "Active",
        }
    }

    /// OData property names are case-sensitive.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

fn realm_not_found(realm: &str) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": "Realm does not exist", "error_description": format!("realm '{realm}' is unknown")}),
    )
}

async fn discovery(
    State(state): State<Shared>,
    Path(realm): Path<String>,
    headers: HeaderMap,
) -> Response {
    if realm != IFS_REALM {
        return realm_not_found(&realm);
    }
    let issuer = format!("{}/ifs/auth/realms/{realm}", origin(&headers, &state));
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/protocol/openid-connect/auth"),
            "token_endpoint": format!("{issuer}/protocol/openid-connect/token"),
            "jwks_uri": format!("{issuer}/protocol/openid-connect/certs"),
            "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }),
    )
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    error_response(ErrorShape::OAuth, status, error, description)
}

/// Client ID and secret from `Authorization: Basic` or the form.
fn client_credentials(
    headers: &HeaderMap,
    form: &[(String, String)],
) -> (Option<String>, Option<String>) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':').map(|(u, p)| {
                let decode = |x: &str| {
                    url::form_urlencoded::parse(format!("v={x}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                (decode(u), decode(p))
            })
        });
    match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            form_value(form, "client_id").map(str::to_owned),
            form_value(form, "client_secret").map(str::to_owned),
        ),
    }
}

async fn token(
    State(state): State<Shared>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let decision = state.fault_for_request(FaultTarget::Iam);
    if let Err(r) = apply_early_fault(decision, ErrorShape::OAuth, || {}).await {
        return r;
    }
    if realm != IFS_REALM {
        return realm_not_found(&realm);
    }
    let form = parse_form(&body);
    match form_value(&form, "grant_type") {
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing form parameter: grant_type",
            )
        }
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant_type",
            )
        }
    }
    let (client_id, secret) = client_credentials(&headers, &form);
    if client_id.as_deref() != Some(IFS_CLIENT_ID) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client or Invalid client credentials",
        );
    }
    if secret.as_deref() != Some(IFS_CLIENT_SECRET) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Invalid client or Invalid client credentials",
        );
    }
    let lifetime = state.settings().ifs_token_lifetime;
    let access_token = lock(&state.ifs_tokens).issue(lifetime);
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "expires_in": lifetime.as_secs(),
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "profile email",
        }),
    )
}

fn odata_error(status: StatusCode, code: &str, message: &str) -> Response {
    error_response(ErrorShape::OData, status, code, message)
}

fn bad_request(message: &str) -> Response {
    odata_error(StatusCode::BAD_REQUEST, "ODP_BAD_REQUEST", message)
}

/// One IFS user with the selected properties, `Active` in the chosen form.
struct IfsEntity<'a> {
    user: &'a IfsUser,
    props: &'a [IfsProp],
    active_as_text: bool,
}

impl Serialize for IfsEntity<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let u = self.user;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry(
            "@odata.etag",
            &format!("W/\"Vk5TSUQ6{}\"", u.identity().len()),
        )?;
        map.serialize_entry("luname", "FndUser")?;
        map.serialize_entry("keyref", &format!("IDENTITY={}^", u.identity()))?;
        for &prop in self.props {
            match prop {
                IfsProp::Identity => map.serialize_entry("Identity", &u.identity())?,
                IfsProp::Description => map.serialize_entry("Description", &u.description())?,
                IfsProp::WebUser => map.serialize_entry("WebUser", &u.directory_id())?,
                IfsProp::Active => {
                    if self.active_as_text {
                        map.serialize_entry("Active", if u.active() { "TRUE" } else { "FALSE" })?
                    } else {
                        map.serialize_entry("Active", &u.active())?
                    }
                }
            }
        }
        map.end()
    }
}

/// Mixed format: decided by the identity, stable across requests.
fn active_as_text(format: IfsActiveFormat, identity: &str) -> bool {
    match format {
        IfsActiveFormat::Bool => false,
        IfsActiveFormat::Text => true,
        IfsActiveFormat::Mixed => identity.bytes().map(u32::from).sum::<u32>() % 2 == 1,
    }
}

#[derive(Serialize)]
struct UsersBody<T: Serialize> {
    #[serde(rename = "@odata.context")]
    context: String,
    #[serde(rename = "@odata.count", skip_serializing_if = "Option::is_none")]
    count: Option<usize>,
    value: T,
    #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
}

fn parse_count(raw: Option<&str>, name: &str) -> Result<Option<usize>, Response> {
    match raw {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| {
            bad_request(&format!(
                "The value '{v}' of {name} is not a non-negative integer."
            ))
        }),
    }
}

async fn users(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let token_check = lock(&state.ifs_tokens).check(bearer(&headers));
    if let Err(problem) = token_check {
        let message = match problem {
            TokenProblem::Missing => "Authentication required: no bearer token.",
            TokenProblem::Unknown => "The bearer token was not issued by IFS IAM.",
            TokenProblem::Expired => "The access token has expired.",
        };
        let mut response = odata_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"prod\""),
        );
        return response;
    }
    let query = parse_query(raw.as_deref());
    if let Some(option) = unsupported_option(
        &query,
        &[
            "$select",
            "$orderby",
            "$top",
            "$skip",
            "$filter",
            "$count",
            "$skiptoken",
        ],
    ) {
        return bad_request(&format!(
            "The query option '{option}' is not supported by the simulator."
        ));
    }
    let select_raw = query_param(&query, "$select");
    let props: Vec<IfsProp> = match select_raw.filter(|s| !s.trim().is_empty()) {
        None => IfsProp::ALL.to_vec(),
        Some(select) => {
            let mut props = Vec::new();
            for name in select.split(',').map(str::trim) {
                match IfsProp::parse(name) {
                    Some(p) if !props.contains(&p) => props.push(p),
                    Some(_) => {}
                    None => {
                        return bad_request(&format!(
                            "The property '{name}' in $select is not defined in type 'FndUser'."
                        ))
                    }
                }
            }
            props
        }
    };
    let descending = match query_param(&query, "$orderby").map(str::trim) {
        None | Some("Identity") | Some("Identity asc") => false,
        Some("Identity desc") => true,
        Some(other) => {
            return bad_request(&format!(
                "$orderby '{other}' is not supported by the simulator (Identity [asc|desc])."
            ))
        }
    };
    let filter_raw = query_param(&query, "$filter");
    let filter: Option<Filter> = match filter_raw {
        None => None,
        Some(text) => match ifs_filter::parse(text) {
            Ok(f) => Some(f),
            Err(e) => return bad_request(&format!("Invalid $filter '{text}': {e}")),
        },
    };
    let top = match parse_count(query_param(&query, "$top"), "$top") {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut skip = match parse_count(query_param(&query, "$skip"), "$skip") {
        Ok(s) => s.unwrap_or(0),
        Err(r) => return r,
    };
    let with_count = query_param(&query, "$count").is_some_and(|c| c.eq_ignore_ascii_case("true"));
    let settings = state.settings();
    let mut page = match top {
        Some(t) if t > 0 => (skip / t) as u32 + 1,
        _ => 1,
    };
    if let Some(token) = query_param(&query, "$skiptoken") {
        let parsed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                let (o, p) = s.split_once('|')?;
                Some((o.parse().ok()?, p.parse().ok()?))
            });
        match parsed {
            Some((offset, p)) => {
                skip = offset;
                page = p;
            }
            None => return bad_request("Invalid $skiptoken."),
        }
    }
    let page_size = match settings.ifs_paging {
        IfsPaging::Skip => match settings.ifs_silent_page_cap {
            Some(cap) => Some(top.unwrap_or(cap).min(cap)),
            None => top,
        },
        IfsPaging::NextLink => Some(
            top.unwrap_or(settings.ifs_max_page_size)
                .min(settings.ifs_max_page_size),
        ),
    };

    let decision = state.fault_for_page(FaultTarget::Ifs, page, |k| {
        !matches!(k, FaultKind::ExpireDelta | FaultKind::DropAfter)
    });
    let presented = bearer(&headers).map(str::to_owned);
    let late = match apply_early_fault(decision, ErrorShape::OData, || {
        if let Some(t) = presented {
            lock(&state.ifs_tokens).expire(&t);
        }
    })
    .await
    {
        Ok(l) => l,
        Err(r) => return r,
    };

    let origin = origin(&headers, &state);
    let body = {
        let ifs = read(&state.ifs);
        let take = page_size.unwrap_or(usize::MAX);
        let (page_users, total): (Vec<&IfsUser>, usize) = if late.empty {
            (Vec::new(), 0)
        } else {
            let all: Box<dyn Iterator<Item = &IfsUser>> = if descending {
                Box::new(ifs.users.iter().rev())
            } else {
                Box::new(ifs.users.iter())
            };
            match &filter {
                Some(f) => {
                    let matched: Vec<&IfsUser> = all.filter(|u| f.matches(u)).collect();
                    let total = matched.len();
                    (matched.into_iter().skip(skip).take(take).collect(), total)
                }
                // Slice iterators skip in O(1): no copy of the whole list.
                None => (all.skip(skip).take(take).collect(), ifs.users.len()),
            }
        };
        let end = skip.saturating_add(take);
        render(
            &origin,
            &props,
            settings.ifs_active_format,
            &page_users,
            with_count.then_some(total),
            next_link_if(
                settings.ifs_paging,
                end < total,
                &origin,
                &query,
                page_size,
                end,
                page,
            ),
        )
    };
    listing_response(body, late)
}

/// The `@odata.nextLink` in next-link mode when more users follow.
fn next_link_if(
    paging: IfsPaging,
    more: bool,
    origin: &str,
    query: &[(String, String)],
    page_size: Option<usize>,
    offset: usize,
    page: u32,
) -> Option<String> {
    if paging != IfsPaging::NextLink || !more {
        return None;
    }
    let mut link = format!("{origin}{USERS_PATH}?");
    for name in ["$select", "$filter", "$orderby", "$count"] {
        if let Some(v) = query_param(query, name) {
            link.push_str(&format!("{name}={}&", encode_query_value(v)));
        }
    }
    if let Some(t) = page_size {
        link.push_str(&format!("$top={t}&"));
    }
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{offset}|{}", page + 1).as_bytes());
    link.push_str(&format!("$skiptoken={token}"));
    Some(link)
}

fn render(
    origin: &str,
    props: &[IfsProp],
    format: IfsActiveFormat,
    users: &[&IfsUser],
    count: Option<usize>,
    next_link: Option<String>,
) -> Vec<u8> {
    let names: Vec<&str> = props.iter().map(|p| p.name()).collect();
    let value: Vec<IfsEntity> = users
        .iter()
        .map(|u| IfsEntity {
            user: u,
            props,
            active_as_text: active_as_text(format, u.identity()),
        })
        .collect();
    serde_json::to_vec(&UsersBody {
        context: format!(
            "{origin}/ifs/main/ifsapplications/projection/v1/UserHandling.svc/$metadata#Users({})",
            names.join(",")
        ),
        count,
        value,
        next_link,
    })
    .unwrap_or_default()
}
