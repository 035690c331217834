//! The Content-Security-Policy of the history pages: nothing may load or
//! run (`default-src 'none'`), and only the page's own inline styles apply,
//! each allowed by its SHA-256 hash (never `'unsafe-inline'`).
//!
//! The hashes are taken from the rendered page: its `<style>` blocks and
//! its `style="…"` attributes (the mail-ready report carries inline style
//! attributes for Outlook; they need `'unsafe-hashes'`). Every value from
//! the directories is HTML-escaped by the templates, so a `"` or `<style>`
//! in a display name never appears raw and cannot add a hash.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// The policy for a downloaded file (CSV, JSON): no rendering at all.
pub const DOWNLOAD: &str = "default-src 'none'; sandbox; frame-ancestors 'none'";

/// The policy for `html`: its own styles by hash, nothing else.
pub fn for_page(html: &str) -> String {
    let mut hashes = BTreeSet::new();
    let mut attributes = false;
    let mut rest = html;
    while let Some(start) = rest.find("<style>") {
        let body = &rest[start + "<style>".len()..];
        let Some(end) = body.find("</style>") else {
            break;
        };
        hashes.insert(hash(&body[..end]));
        rest = &body[end..];
    }
    let mut rest = html;
    while let Some(start) = rest.find(" style=\"") {
        let value = &rest[start + " style=\"".len()..];
        let Some(end) = value.find('"') else {
            break;
        };
        hashes.insert(hash(&value[..end]));
        attributes = true;
        rest = &value[end..];
    }
    let mut style_src: Vec<String> = Vec::new();
    if attributes {
        style_src.push("'unsafe-hashes'".to_string());
    }
    style_src.extend(hashes.into_iter().map(|h| format!("'sha256-{h}'")));
    let style_src = if style_src.is_empty() {
        "'none'".to_string()
    } else {
        style_src.join(" ")
    };
    format!(
        "default-src 'none'; style-src {style_src}; img-src 'none'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
}

fn hash(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_style_blocks_and_attributes() {
        let csp = for_page("<style>b{}</style><p style=\"color:red\">x</p>");
        // printf 'b{}' | openssl dgst -sha256 -binary | base64
        assert!(csp.contains(&format!("'sha256-{}'", hash("b{}"))), "{csp}");
        assert!(
            csp.contains(&format!("'sha256-{}'", hash("color:red"))),
            "{csp}"
        );
        assert!(csp.contains("'unsafe-hashes'"), "{csp}");
        assert!(csp.starts_with("default-src 'none';"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }

    #[test]
    fn escaped_text_adds_no_hash() {
        let csp = for_page("<style>b{}</style><p>style=&#34;color:red&#34; &lt;style&gt;</p>");
        assert_eq!(csp.matches("'sha256-").count(), 1, "{csp}");
        assert!(!csp.contains("'unsafe-hashes'"), "{csp}");
    }
}
