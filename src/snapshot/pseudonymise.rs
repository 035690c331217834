//! Pseudonymised snapshots: names and addresses replaced by keyed hashes
//! (HMAC-SHA-256), consistently across the three systems, so the drift
//! patterns survive and the people do not.
//!
//! What stays comparable:
//! - the same identifier maps to the same pseudonym wherever it occurs
//!   (UPN, mail, Directory ID, Flow ID, sAMAccountName, object ID): the key
//!   of the hash is the identifier's matching form (`NormalizedId`), so
//!   values idrecon treats as equal stay equal;
//! - an address keeps its shape: local part and domain are mapped on their
//!   own, so a Flow ID without domain still equals the UPN's local part and
//!   every address of one domain shares one pseudonymous domain;
//! - letter case is carried over position by position, so values that
//!   differ only in case still do (`case_only`, upper-case Directory IDs);
//! - object IDs stay GUIDs, guests keep `#EXT#`, flags and types are kept.
//!
//! Without the key the pseudonyms cannot be reversed or recomputed.

use super::SnapshotFile;
use compact_str::CompactString;
use hmac::{Hmac, Mac};
use idrecon_core::model::NormalizedId;
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization;

/// Shortest pseudonym of a local part or identity (collision-free in
/// practice for millions of users).
const MIN_TOKEN_LEN: usize = 12;
/// Marker of a guest's UPN, kept so guests stay guests.
const GUEST_MARKER: &str = "#EXT#";

/// Replaces identifiers and names with keyed pseudonyms.
pub struct Pseudonymiser {
    key: Vec<u8>,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymiser { key: <redacted> }")
    }
}

impl Pseudonymiser {
    /// With the given key (any length; at least 16 bytes recommended).
    pub fn new(key: &[u8]) -> Pseudonymiser {
        Pseudonymiser { key: key.to_vec() }
    }

    /// With a fresh random 32-byte key that is never shown or stored.
    pub fn random() -> Pseudonymiser {
        // Two v4 UUIDs: 244 bits from the operating system's random source.
        let key = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
            .iter()
            .flat_map(|u| *u.as_bytes())
            .collect();
        Pseudonymiser { key }
    }

    fn digest(&self, domain: &str, text: &str) -> [u8; 32] {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable_hmac(),
        };
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(text.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Letters a–z from the hash of `text`, `len` long (at most 32).
    fn letters(&self, domain: &str, text: &str, len: usize) -> String {
        self.digest(domain, text)
            .iter()
            .take(len)
            .map(|b| char::from(b'a' + b % 26))
            .collect()
    }

    /// Pseudonymises the whole snapshot in place.
    pub fn apply(&self, file: &mut SnapshotFile) {
        for u in &mut file.azure {
            u.edit(|u| {
                u.id = self.identifier(&u.id).into();
                u.user_principal_name = self.identifier(&u.user_principal_name).into();
                self.opt(&mut u.mail, Self::identifier);
                self.opt(&mut u.display_name, Self::name);
                self.opt(&mut u.employee_id, Self::identifier);
                self.opt(&mut u.on_premises_sam_account_name, Self::identifier);
            });
        }
        for u in &mut file.ifs {
            u.edit(|u| {
                u.identity = self.identifier(&u.identity).into();
                self.opt(&mut u.description, Self::name);
                self.opt(&mut u.directory_id, Self::identifier);
                self.opt(&mut u.email, Self::identifier);
            });
        }
        for u in &mut file.flow {
            u.edit(|u| {
                u.user_id = self.identifier(&u.user_id).into();
                self.opt(&mut u.name, Self::name);
                self.opt(&mut u.email, Self::identifier);
            });
        }
        file.groups = std::mem::take(&mut file.groups)
            .into_iter()
            .map(|(group, members)| {
                (
                    self.identifier(&group),
                    members.iter().map(|m| self.identifier(m)).collect(),
                )
            })
            .collect();
        file.pseudonymised = true;
    }

    fn opt(&self, value: &mut Option<CompactString>, f: fn(&Self, &str) -> String) {
        if let Some(v) = value.as_mut() {
            *v = f(self, v).into();
        }
    }

    /// A UPN, address, GUID, Directory ID, Flow ID or other identifier.
    pub fn identifier(&self, raw: &str) -> String {
        if raw.trim().is_empty() {
            return raw.to_string();
        }
        if is_guid(raw.trim()) {
            return self.guid(raw.trim());
        }
        match raw.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
                format!("{}@{}", self.local_part(local), self.domain(domain))
            }
            _ => self.local_part(raw),
        }
    }

    fn local_part(&self, local: &str) -> String {
        match local.split_once(GUEST_MARKER) {
            Some((before, after)) => format!(
                "{}{GUEST_MARKER}{}",
                self.token(before),
                if after.is_empty() {
                    String::new()
                } else {
                    self.token(after)
                }
            ),
            None => self.token(local),
        }
    }

    /// One identifier without `@`: letters, as long as the original (at
    /// least [`MIN_TOKEN_LEN`]), in the original's letter case.
    fn token(&self, text: &str) -> String {
        if text.is_empty() {
            return String::new();
        }
        let key = NormalizedId::new(text);
        let len = key.as_str().chars().count().clamp(MIN_TOKEN_LEN, 32);
        with_case_of(text, &self.letters("token", key.as_str(), len))
    }

    fn domain(&self, domain: &str) -> String {
        let key = NormalizedId::new(domain);
        let pseudo = format!("{}.example", self.letters("domain", key.as_str(), 10));
        with_case_of(domain, &pseudo)
    }

    fn guid(&self, guid: &str) -> String {
        let d = self.digest("guid", &guid.to_ascii_lowercase());
        let hex: String = d.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let formatted = format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        );
        with_case_of(guid, &formatted)
    }

    /// A person's name: "Person" and a pseudonym, the same for the same
    /// name in every system.
    pub fn name(&self, raw: &str) -> String {
        if raw.trim().is_empty() {
            return raw.to_string();
        }
        let key = NormalizedId::new(raw);
        let letters = self.letters("name", key.as_str(), 8);
        let mut chars = letters.chars();
        let first = chars.next().map(|c| c.to_ascii_uppercase()).unwrap_or('X');
        format!("Person {first}{}", chars.as_str())
    }
}

/// HMAC takes keys of any length, so its constructor never fails.
fn unreachable_hmac() -> ! {
    unreachable!("HMAC-SHA-256 accepts keys of any length")
}

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `pseudo` in the letter case of `original`: all lower or all upper when
/// the original is, else upper case wherever the original (NFC) has an
/// upper-case letter at the same position.
fn with_case_of(original: &str, pseudo: &str) -> String {
    let original: Vec<char> = original.nfc().collect();
    let has_upper = original.iter().any(|c| c.is_uppercase());
    let has_lower = original.iter().any(|c| c.is_lowercase());
    match (has_upper, has_lower) {
        (false, _) => pseudo.to_lowercase(),
        (true, false) => pseudo.to_uppercase(),
        (true, true) => pseudo
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if original.get(i).is_some_and(|o| o.is_uppercase()) {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_keep_their_relations() {
        let p = Pseudonymiser::new(b"test key");
        let upn = p.identifier("Asa.Oberg12@contoso.com");
        let (local, domain) = upn.split_once('@').unwrap();
        // Same person, other spellings.
        assert_eq!(p.identifier("asa.oberg12"), local.to_lowercase());
        assert_eq!(p.identifier("ASA.OBERG12@CONTOSO.COM"), upn.to_uppercase());
        assert_ne!(p.identifier("asa.oberg12@contoso.com"), upn);
        assert!(p
            .identifier("asa.oberg12@contoso.com")
            .eq_ignore_ascii_case(&upn));
        assert_eq!(
            p.identifier("x@contoso.com").split_once('@').unwrap().1,
            domain
        );
        assert!(!upn.to_lowercase().contains("oberg"));
        // GUIDs stay GUIDs, guests stay guests.
        let guid = p.identifier("0a1b2c3d-0000-4000-8000-00000000beef");
        assert!(is_guid(&guid), "{guid}");
        let guest = p.identifier("jane_fabrikam.com#EXT#@contoso.onmicrosoft.com");
        assert!(guest.contains("#EXT#@"), "{guest}");
        // NFD and NFC spellings are one identifier.
        let nfc = "Åsa@contoso.com";
        let nfd: String = nfc.nfd().collect();
        assert_eq!(p.identifier(nfc), p.identifier(&nfd));
        // Another key, other pseudonyms.
        assert_ne!(
            Pseudonymiser::new(b"other").identifier("jdoe"),
            p.identifier("jdoe")
        );
        assert_eq!(p.name("José Strauß"), p.name("josé strauß"));
        assert!(format!("{p:?}").contains("redacted"));
    }
}
