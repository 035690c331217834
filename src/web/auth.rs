//! Who may see the history pages. Without `server.auth_token` only a
//! loopback listener serves them; with it, every page and download needs
//! the token, as `Authorization: Bearer TOKEN` or as the password of HTTP
//! basic auth (any user name), compared in constant time.

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

/// The access rule of the history pages.
#[derive(Clone, Debug)]
pub enum Access {
    /// No token; the listener is on loopback: anyone who can connect (this
    /// machine only) may read.
    LoopbackOnly,
    /// No token and the listener is reachable from other machines: the
    /// pages are refused (403) so the run history never leaks.
    Refused,
    /// Every request needs this token.
    Token(SecretString),
}

impl Access {
    /// The rule for a listener on `addr` with `token` (`server.auth_token`).
    pub fn for_listener(addr: SocketAddr, token: Option<SecretString>) -> Access {
        match token {
            Some(token) => Access::Token(token),
            None if addr.ip().is_loopback() => Access::LoopbackOnly,
            None => Access::Refused,
        }
    }
}

/// Whether the `Authorization` header value carries `token`.
pub fn authorized(header: Option<&str>, token: &SecretString) -> bool {
    let Some(given) = header.and_then(presented_secret) else {
        return false;
    };
    // Equal-length digests, so the comparison time says nothing about
    // the token's length or content.
    let expected = Sha256::digest(token.expose_secret().as_bytes());
    let given = Sha256::digest(given.as_bytes());
    expected.as_slice().ct_eq(given.as_slice()).into()
}

/// The secret of a `Bearer TOKEN` or `Basic base64(user:TOKEN)` header.
fn presented_secret(header: &str) -> Option<String> {
    let (scheme, value) = header.trim().split_once(' ')?;
    let value = value.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(value.to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_user, password) = text.split_once(':')?;
        return Some(password.to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> SecretString {
        SecretString::from("s3cret-token")
    }

    #[test]
    fn bearer_and_basic_password_are_accepted() {
        assert!(authorized(Some("Bearer s3cret-token"), &token()));
        assert!(authorized(Some("bearer s3cret-token"), &token()));
        let basic = base64::engine::general_purpose::STANDARD.encode("admin:s3cret-token");
        assert!(authorized(Some(&format!("Basic {basic}")), &token()));
    }

    #[test]
    fn anything_else_is_refused() {
        let wrong = base64::engine::general_purpose::STANDARD.encode("s3cret-token:wrong");
        for header in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer s3cret-toke"),
            Some("Bearer s3cret-token2"),
            Some("Token s3cret-token"),
            Some("Basic !!!"),
            Some(&format!("Basic {wrong}")),
        ] {
            assert!(!authorized(header, &token()), "{header:?}");
        }
    }

    #[test]
    fn no_token_serves_loopback_only() {
        let local: SocketAddr = "127.0.0.1:9100".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:9100".parse().unwrap();
        assert!(matches!(
            Access::for_listener(local, None),
            Access::LoopbackOnly
        ));
        assert!(matches!(Access::for_listener(any, None), Access::Refused));
        assert!(matches!(
            Access::for_listener(any, Some(token())),
            Access::Token(_)
        ));
    }
}
