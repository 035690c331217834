//! Masks every configured secret in text that leaves idrecon's hands:
//! error messages (and so logs, abort reasons, reports, the database and
//! mail subjects). A service that echoes its request in an error text
//! would otherwise hand the client secret back into all of those.
//!
//! One [`Redactor`] is built from the configuration; token sources add the
//! access tokens they obtain. Each secret is masked as written, URL-encoded
//! (as in a form body or a query), and base64-encoded (standard and URL
//! alphabets), and HTTP Basic credentials as the `user:password` pair
//! base64-encoded (an echoed `Authorization` header).

use crate::config::{AzureCredential, Config};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::sync::{Arc, RwLock};

/// What a masked secret is replaced with.
pub const MASK: &str = "[redacted]";
/// Shorter values are not masked: replacing every `a` would destroy the
/// text without protecting anything.
const MIN_SECRET_CHARS: usize = 4;

/// The set of values to mask; cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Redactor {
    forms: Arc<RwLock<Vec<String>>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.forms.read().map(|f| f.len()).unwrap_or(0);
        write!(f, "Redactor({n} forms)")
    }
}

impl PartialEq for Redactor {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.forms, &other.forms)
    }
}

impl Eq for Redactor {}

impl Redactor {
    /// Every secret of `cfg`: the Azure client secret, the IFS client
    /// secret, the Flow password (also as Basic credentials), the SMTP
    /// password and the ops server's token.
    pub fn from_config(cfg: &Config) -> Redactor {
        let redactor = Redactor::default();
        redactor.add_config(cfg);
        redactor
    }

    /// Adds the secrets of `cfg` (see [`Redactor::from_config`]).
    pub fn add_config(&self, cfg: &Config) {
        let redactor = self;
        if let AzureCredential::Secret(secret) = &cfg.azure.credential {
            redactor.add(secret);
        }
        redactor.add(&cfg.ifs.client_secret);
        if let Some(password) = &cfg.flow.password {
            redactor.add(password);
            if let Some(user) = &cfg.flow.username {
                redactor.add_basic(user, password);
            }
        }
        if let Some(password) = &cfg.report.smtp_password {
            redactor.add(password);
        }
    }

    /// Masks `secret` from now on, in all its encoded forms.
    pub fn add(&self, secret: &SecretString) {
        let value = secret.expose_secret();
        if value.chars().count() < MIN_SECRET_CHARS {
            return;
        }
        let url_encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        let percent_encoded =
            percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let forms = [
            value.to_string(),
            url_encoded,
            percent_encoded,
            base64::engine::general_purpose::STANDARD.encode(value),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(value),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value),
        ];
        self.extend(forms);
    }

    /// Masks the HTTP Basic credentials `user:password` as they appear in
    /// an `Authorization` header.
    pub fn add_basic(&self, user: &str, password: &SecretString) {
        let pair = format!("{user}:{}", password.expose_secret());
        self.extend([
            base64::engine::general_purpose::STANDARD.encode(&pair),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(&pair),
        ]);
    }

    fn extend(&self, forms: impl IntoIterator<Item = String>) {
        let Ok(mut known) = self.forms.write() else {
            return;
        };
        for form in forms {
            if form.chars().count() >= MIN_SECRET_CHARS && !known.contains(&form) {
                known.push(form);
            }
        }
        // Longest first, so a form containing another is masked whole.
        known.sort_by_key(|f| std::cmp::Reverse(f.len()));
    }

    /// `text` with every known secret form replaced by [`MASK`].
    pub fn mask(&self, text: &str) -> String {
        let Ok(forms) = self.forms.read() else {
            return text.to_string();
        };
        let mut out = text.to_string();
        for form in forms.iter() {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), MASK);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_masked() {
        let r = Redactor::default();
        r.add(&SecretString::from("p@ss w+rd/42"));
        r.add_basic("svc", &SecretString::from("p@ss w+rd/42"));
        let b64 = base64::engine::general_purpose::STANDARD.encode("p@ss w+rd/42");
        let basic = base64::engine::general_purpose::STANDARD.encode("svc:p@ss w+rd/42");
        let text = format!(
            "raw p@ss w+rd/42 form p%40ss+w%2Brd%2F42 pct p%40ss%20w%2Brd%2F42 b64 {b64} basic Basic {basic}"
        );
        let masked = r.mask(&text);
        assert!(
            !masked.contains("w+rd") && !masked.contains("w%2Brd"),
            "{masked}"
        );
        assert!(
            !masked.contains(&b64) && !masked.contains(&basic),
            "{masked}"
        );
        assert_eq!(masked.matches(MASK).count(), 5, "{masked}");
    }

    #[test]
    fn tiny_values_are_left_alone() {
        let r = Redactor::default();
        r.add(&SecretString::from("a"));
        assert_eq!(r.mask("a cat"), "a cat");
    }
}
