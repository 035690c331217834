//! The SMTP server `report.smtp_url` names, parsed once at load time: host,
//! port and how the connection is secured. The mail sender uses the parsed
//! [`SmtpEndpoint`]; it never sees the URL text.
//!
//! Forms:
//! - `smtp://host:587?tls=required` — STARTTLS, required (also the meaning of
//!   `smtp://host` without `tls`: idrecon does not send in clear by default);
//! - `smtp://host:587?tls=opportunistic` — STARTTLS when the server offers it;
//! - `smtps://host:465` — implicit TLS;
//! - `smtp://relay:25?tls=none` — no TLS (local relays and tests).
//!
//! Credentials come from `report.smtp_username` / `report.smtp_password`,
//! never from the URL.

use std::net::IpAddr;
use url::{Host, Url};

/// Why an SMTP URL cannot be used. The message names what is wrong but never
/// repeats the URL (it could hold a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SmtpUrlError(String);

/// How the connection to the SMTP server is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// STARTTLS, required.
    StartTls,
    /// STARTTLS when offered, clear otherwise.
    Opportunistic,
    /// TLS from the first byte (`smtps://`).
    ImplicitTls,
    /// No TLS (`tls=none`).
    None,
}

impl SmtpSecurity {
    /// A short name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpSecurity::StartTls => "STARTTLS",
            SmtpSecurity::Opportunistic => "STARTTLS if offered",
            SmtpSecurity::ImplicitTls => "implicit TLS",
            SmtpSecurity::None => "no TLS",
        }
    }

    /// Whether the connection is encrypted whatever the server offers.
    pub fn is_encrypted(self) -> bool {
        matches!(self, SmtpSecurity::StartTls | SmtpSecurity::ImplicitTls)
    }
}

/// The server `report.smtp_url` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpEndpoint {
    /// Host name or IP address (without brackets).
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
}

impl SmtpEndpoint {
    /// Parses an `smtp://` or `smtps://` URL.
    pub fn parse(smtp_url: &str) -> Result<Self, SmtpUrlError> {
        let bad = |what: String| SmtpUrlError(what);
        let url = Url::parse(smtp_url.trim()).map_err(|e| bad(format!("not a URL ({e})")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "credentials in the URL are not accepted; set report.smtp_username and report.smtp_password"
                    .into(),
            ));
        }
        let host = match url.host() {
            Some(Host::Domain(d)) if !d.is_empty() => {
                // For non-special schemes the url crate keeps IP hosts as text.
                d.trim_start_matches('[').trim_end_matches(']').to_string()
            }
            Some(Host::Ipv4(a)) => a.to_string(),
            Some(Host::Ipv6(a)) => a.to_string(),
            _ => return Err(bad("no host".into())),
        };
        let mut tls: Option<String> = None;
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "tls" if tls.is_none() => tls = Some(value.into_owned()),
                "tls" => return Err(bad("`tls` given twice".into())),
                other => {
                    return Err(bad(format!(
                        "unknown parameter `{other}` (only `tls` = required | opportunistic | none)"
                    )))
                }
            }
        }
        let (security, default_port) = match (url.scheme(), tls.as_deref()) {
            ("smtp", None | Some("required")) => (SmtpSecurity::StartTls, 587),
            ("smtp", Some("opportunistic")) => (SmtpSecurity::Opportunistic, 587),
            ("smtp", Some("none")) => (SmtpSecurity::None, 25),
            ("smtps", None | Some("required")) => (SmtpSecurity::ImplicitTls, 465),
            ("smtp" | "smtps", Some(other)) => {
                return Err(bad(format!(
                    "`tls={other}` is not valid for {}:// (use required | opportunistic | none with smtp://, nothing with smtps://)",
                    url.scheme()
                )))
            }
            (scheme, _) => {
                return Err(bad(format!(
                    "scheme `{scheme}` is not supported (use smtp:// or smtps://)"
                )))
            }
        };
        Ok(SmtpEndpoint {
            host,
            port: url.port().unwrap_or(default_port),
            security,
        })
    }

    /// `localhost`, 127.0.0.0/8 or ::1.
    pub fn is_loopback(&self) -> bool {
        match self.host.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => self.host.eq_ignore_ascii_case("localhost"),
        }
    }
}

impl std::fmt::Display for SmtpEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_url_forms() {
        let e = SmtpEndpoint::parse("smtp://mail.contoso.com:587?tls=required").unwrap();
        assert_eq!(
            e,
            SmtpEndpoint {
                host: "mail.contoso.com".into(),
                port: 587,
                security: SmtpSecurity::StartTls
            }
        );
        let e = SmtpEndpoint::parse("smtps://mail.contoso.com").unwrap();
        assert_eq!((e.port, e.security), (465, SmtpSecurity::ImplicitTls));
        let e = SmtpEndpoint::parse("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.security),
            ("127.0.0.1", 2525, SmtpSecurity::None)
        );
        assert!(e.is_loopback());
        let e = SmtpEndpoint::parse("smtp://relay").unwrap();
        assert_eq!((e.port, e.security), (587, SmtpSecurity::StartTls));
        assert!(!e.is_loopback());
        let e = SmtpEndpoint::parse("smtp://[::1]:25?tls=opportunistic").unwrap();
        assert_eq!(
            (e.host.as_str(), e.security),
            ("::1", SmtpSecurity::Opportunistic)
        );
        assert!(e.is_loopback());
        assert_eq!(e.to_string(), "[::1]:25");
    }

    #[test]
    fn rejects_bad_urls_without_echoing_them() {
        let err = SmtpEndpoint::parse("smtp://bob:hunter2@mail.contoso.com").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("smtp_username"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let text = SmtpEndpoint::parse("smtp://mail?tsl=none")
            .unwrap_err()
            .to_string();
        assert!(text.contains("unknown parameter `tsl`"), "{text}");
        let text = SmtpEndpoint::parse("smtps://mail?tls=none")
            .unwrap_err()
            .to_string();
        assert!(text.contains("tls=none"), "{text}");
        let text = SmtpEndpoint::parse("http://mail").unwrap_err().to_string();
        assert!(text.contains("scheme `http`"), "{text}");
        assert!(SmtpEndpoint::parse("not a url").is_err());
    }
}
