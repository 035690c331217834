//! Where a request may go: plain http only to loopback (unless allowed),
//! links handed back by a service only to the configured origin, and URLs
//! shown in errors and logs without queries or credentials.

use crate::sources::{SourceError, SourceErrorKind, System};
use url::Url;

/// Refuses a plain-`http` URL to anything but a loopback host unless the
/// configuration allows it (docs/contract.md, "Configuration").
pub fn require_secure(
    system: System,
    what: &str,
    url: &Url,
    allow_insecure: bool,
) -> Result<(), SourceError> {
    if url.scheme() == "https" {
        return Ok(());
    }
    if url.scheme() != "http" {
        return Err(SourceError::new(
            system,
            SourceErrorKind::Config,
            format!(
                "{what} must be an http(s) URL, got scheme {:?}",
                url.scheme()
            ),
        ));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if loopback || allow_insecure {
        Ok(())
    } else {
        Err(SourceError::new(
            system,
            SourceErrorKind::Config,
            format!(
                "{what} uses plain http to a non-loopback host ({}); use https or set allow_insecure_http = true",
                url.host_str().unwrap_or("?")
            ),
        ))
    }
}

/// The part of a URL that may appear in errors and logs: the path only (no
/// query with skip or delta tokens, no user info, no host).
pub fn error_path(url: &Url) -> String {
    url.path().to_string()
}

/// A URL fit for `Debug` and logs: no user info, no query, no fragment.
pub fn redacted_url(url: &Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

/// Whether two URLs point at the same scheme, host and port (so a link
/// handed back by a service does not send our credentials elsewhere).
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

/// Appends path segments to a base URL, keeping the base's own path
/// (`https://h/ifs` + `a/b` → `https://h/ifs/a/b`).
pub fn join_path(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url.set_query(None);
    url.set_fragment(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_never_carry_queries_or_credentials() {
        let url = Url::parse("https://user:pw@graph.example/v1.0/users?$skiptoken=SECRET").unwrap();
        assert_eq!(error_path(&url), "/v1.0/users");
    }

    #[test]
    fn redacted_urls_drop_credentials_and_queries() {
        let url = Url::parse("https://svc:hunter2@flow.example/idrecon?key=abc").unwrap();
        assert_eq!(redacted_url(&url), "https://flow.example/idrecon");
    }

    #[test]
    fn join_keeps_base_path() {
        let base = Url::parse("http://127.0.0.1:1/ifs/").unwrap();
        assert_eq!(
            join_path(&base, "/main/Users").as_str(),
            "http://127.0.0.1:1/ifs/main/Users"
        );
        let base = Url::parse("https://h").unwrap();
        assert_eq!(join_path(&base, "a/b").as_str(), "https://h/a/b");
    }

    #[test]
    fn insecure_http_only_to_loopback_unless_allowed() {
        let local = Url::parse("http://127.0.0.1:8080/").unwrap();
        let remote = Url::parse("http://ifs.example.com/").unwrap();
        assert!(require_secure(System::Ifs, "ifs.url", &local, false).is_ok());
        let e = require_secure(System::Ifs, "ifs.url", &remote, false).unwrap_err();
        assert!(e.message.contains("allow_insecure_http"));
        assert!(require_secure(System::Ifs, "ifs.url", &remote, true).is_ok());
    }
}
