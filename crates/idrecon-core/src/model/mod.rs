//! The domain model shared by every part of idrecon: the users of each
//! system, the findings the core produces and the actions that fix Flow.
//!
//! Everything here is plain data. Raw values are always kept as they came
//! from the source (for display and for writes); comparisons go through
//! [`NormalizedId`].
//!
//! The users' texts are packed, one allocation per user
//! (`users`, `packed`): millions of them are in memory at once.

mod packed;
mod users;

pub use users::{
    AadUser, AadUserFields, AadUserRef, FlowUser, FlowUserFields, IfsUser, IfsUserFields,
};

use serde::{Deserialize, Serialize};
use std::fmt;
use unicode_normalization::UnicodeNormalization;

/// An identifier in the form the directories compare it: trimmed, NFC and
/// Unicode (full) case folded, so `JDoe@Contoso.com`, `jdoe@contoso.com ` and
/// `JDOE@CONTOSO.COM` are equal, and `Straße` equals `STRASSE`.
///
/// The raw value is never replaced by this; keep both.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NormalizedId(String);

impl NormalizedId {
    /// Case-insensitive normal form (the default matching).
    pub fn new(raw: &str) -> Self {
        // Fast path: for ASCII text NFD/NFC change nothing and the full case
        // fold is ASCII lower case, so the loop below would return exactly this.
        let trimmed = raw.trim();
        if trimmed.is_ascii() {
            return Self(trimmed.to_ascii_lowercase());
        }
        if let Some(folded) = latin::fold(trimmed) {
            return Self(folded);
        }
        Self(Self::caseless(trimmed))
    }

    /// The canonical caseless form of any text (Unicode §3.13: NFD, fold,
    /// NFD), stored as NFC: the definition the fast paths must equal.
    pub(crate) fn caseless(raw: &str) -> String {
        // Folding can produce text that normalises differently, so repeat
        // until nothing changes; this makes the function idempotent.
        let mut current: String = raw.trim().to_string();
        loop {
            let decomposed: String = current.nfd().collect();
            let folded = caseless::default_case_fold_str(&decomposed);
            let next: String = folded.nfc().collect::<String>().trim().to_string();
            if next == current {
                return next;
            }
            current = next;
        }
    }

    /// Case-sensitive normal form (`matching.case_sensitive = true`): trimmed and NFC only.
    pub fn case_sensitive(raw: &str) -> Self {
        let trimmed = raw.trim();
        if trimmed.is_ascii()
            || unicode_normalization::is_nfc_quick(trimmed.chars())
                == unicode_normalization::IsNormalized::Yes
        {
            // NFC leaves ASCII, and text the quick check finds in NFC, unchanged.
            return Self(trimmed.to_string());
        }
        Self(raw.trim().nfc().collect::<String>().trim().to_string())
    }

    /// Normalises according to the configured matching mode.
    pub fn with_mode(raw: &str, case_sensitive: bool) -> Self {
        if case_sensitive {
            Self::case_sensitive(raw)
        } else {
            Self::new(raw)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for NormalizedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The caseless form of text written in Latin letters, one character at a
/// time: the fast path of [`NormalizedId::new`] for names like `Åsa.Öberg`.
///
/// Every character of U+00C0..=U+024F (Latin-1 letters, Latin Extended-A and
/// -B) is a starter (canonical combining class 0) whose caseless form begins
/// with a starter, and no canonical composition joins two starters outside
/// Hangul and a few Indic scripts. So in a text of ASCII and these
/// characters no character's decomposition, folding or composition reaches
/// into its neighbour's, and the caseless form of the text is the caseless
/// forms of its characters in a row. The table holds those forms, computed
/// by [`NormalizedId::caseless`] itself; `tests::latin_fast_path_*` check
/// every character and every pair against it.
pub(crate) mod latin {
    use std::sync::OnceLock;

    const FIRST: u32 = 0xC0;
    const LAST: u32 = 0x24F;

    fn table() -> &'static [Box<str>] {
        static TABLE: OnceLock<Vec<Box<str>>> = OnceLock::new();
        TABLE.get_or_init(|| {
            (FIRST..=LAST)
                .map(|code| {
                    char::from_u32(code)
                        .map(|c| super::NormalizedId::caseless(c.encode_utf8(&mut [0; 4])))
                        .unwrap_or_default()
                        .into_boxed_str()
                })
                .collect()
        })
    }

    /// The caseless form of `trimmed` (already trimmed), or `None` when it
    /// holds a character outside ASCII and the table's range.
    pub(super) fn fold(trimmed: &str) -> Option<String> {
        let mut out = String::with_capacity(trimmed.len() + 4);
        fold_into(trimmed, &mut out).then_some(out)
    }

    /// Appends the caseless form of `trimmed` to `out`; `false` (and `out`
    /// as it was) when `trimmed` holds a character outside the range.
    pub(crate) fn fold_into(trimmed: &str, out: &mut String) -> bool {
        let table = table();
        let start = out.len();
        for c in trimmed.chars() {
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
                continue;
            }
            let folded = (c as u32)
                .checked_sub(FIRST)
                .and_then(|index| table.get(index as usize));
            match folded {
                Some(folded) => out.push_str(folded),
                None => {
                    out.truncate(start);
                    return false;
                }
            }
        }
        true
    }

    #[cfg(test)]
    pub(super) fn range() -> impl Iterator<Item = char> {
        (FIRST..=LAST).filter_map(char::from_u32)
    }
}

/// The three complete snapshots one run reconciles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshots {
    pub azure: Vec<AadUser>,
    pub ifs: Vec<IfsUser>,
    pub flow: Vec<FlowUser>,
}

/// What is wrong with one person (docs/contract.md, "Finding kinds").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::Display, strum::EnumString, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum FindingKind {
    IdMismatch,
    MissingInFlow,
    MissingInIfs,
    NotInAzure,
    DisabledInAzure,
    Ambiguous,
    Conflict,
    DirectoryIdMissing,
    DuplicateDirectoryId,
    SyncManaged,
}

impl FindingKind {
    /// The snake_case name of the JSON report, the CSV and the store.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Why a Flow ID differs from the IFS Directory ID (docs/contract.md, "Causes").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::Display, strum::EnumString, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Cause {
    CaseOnly,
    DomainStripped,
    MailVsUpn,
    SamAccountName,
    ObjectId,
    Other,
}

impl Cause {
    /// The snake_case name of the JSON report, the CSV and the store.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Whether a finding was already open after the previous completed run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[derive(strum::Display, strum::EnumString, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum FindingStatus {
    #[default]
    New,
    Persisting,
}

impl FindingStatus {
    /// The snake_case name of the JSON report, the CSV and the store.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What idrecon would do (or did) about a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[derive(strum::Display, strum::EnumString, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum ActionKind {
    Rename,
    Deactivate,
    #[default]
    None,
}

impl ActionKind {
    /// The snake_case name of the JSON report, the CSV and the store.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The state of an action as the report shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::Display, strum::EnumString, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum ActionStatus {
    /// Planned but not (yet) applied: report mode, or not reached.
    Planned,
    Applied,
    Failed,
    /// Not applied on purpose (e.g. threshold exceeded, deactivation disabled).
    Skipped,
    /// Cannot be applied safely (cycle, collision, taken target).
    Blocked,
}

impl ActionStatus {
    /// The snake_case name of the JSON report, the CSV and the store.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One non-OK person, with every field of the JSON report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub cause: Option<Cause>,
    pub status: FindingStatus,
    pub aad_id: Option<String>,
    pub upn: Option<String>,
    pub display_name: Option<String>,
    pub ifs_identity: Option<String>,
    pub ifs_directory_id: Option<String>,
    pub flow_user_id: Option<String>,
    pub expected_flow_user_id: Option<String>,
    pub action: ActionKind,
    /// `None` when `action` is `none`.
    pub action_status: Option<ActionStatus>,
    pub detail: String,
}

impl Finding {
    /// A finding of `kind` with every optional field empty.
    pub fn new(kind: FindingKind) -> Self {
        Finding {
            kind,
            cause: None,
            status: FindingStatus::New,
            aad_id: None,
            upn: None,
            display_name: None,
            ifs_identity: None,
            ifs_directory_id: None,
            flow_user_id: None,
            expected_flow_user_id: None,
            action: ActionKind::None,
            action_status: None,
            detail: String::new(),
        }
    }

    /// The identity of this finding across runs, for new / persisting /
    /// resolved: its kind plus the most stable anchor of the person (Azure
    /// object ID, else IFS identity, else Flow user ID in normal form).
    pub fn key(&self) -> String {
        // Pushed piece by piece rather than through `format!`s: a run makes
        // the keys of 100k+ findings.
        let mut key = String::with_capacity(64);
        key.push_str(self.kind.as_str());
        key.push('|');
        if let Some(id) = &self.aad_id {
            key.push_str("aad:");
            let start = key.len();
            key.push_str(id);
            key[start..].make_ascii_lowercase();
        } else if let Some(identity) = &self.ifs_identity {
            key.push_str("ifs:");
            key.push_str(NormalizedId::new(identity).as_str());
        } else if let Some(flow) = &self.flow_user_id {
            key.push_str("flow:");
            key.push_str(NormalizedId::new(flow).as_str());
        } else {
            key.push('-');
        }
        key
    }
}

/// A change to a Flow user: planned by `reconcile::plan`, executed by `apply`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub kind: ActionKind,
    /// The Flow user's current ID (raw).
    pub flow_user_id: String,
    /// The target ID for a rename (the exact raw IFS Directory ID).
    pub new_flow_user_id: Option<String>,
    pub status: ActionStatus,
    /// The service's error for `failed`, the reason for `blocked`/`skipped`.
    pub error: Option<String>,
}

/// A rule linking an Azure user to an IFS user (docs/semantics.md §2), in
/// the order given by `matching.ifs_rules`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::Display, strum::EnumString, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum IfsMatchRule {
    Upn,
    Mail,
    ObjectId,
    SamAccountName,
}

impl IfsMatchRule {
    pub const DEFAULT_ORDER: [IfsMatchRule; 4] = [
        IfsMatchRule::Upn,
        IfsMatchRule::Mail,
        IfsMatchRule::ObjectId,
        IfsMatchRule::SamAccountName,
    ];
}

/// A rule linking an Azure user to a Flow user (docs/semantics.md §3), in
/// the order given by `matching.flow_rules`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::Display, strum::EnumString, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum FlowMatchRule {
    IfsDirectoryId,
    Upn,
    Mail,
    ObjectId,
    UpnLocalPart,
    SamAccountName,
    Email,
}

impl FlowMatchRule {
    pub const DEFAULT_ORDER: [FlowMatchRule; 7] = [
        FlowMatchRule::IfsDirectoryId,
        FlowMatchRule::Upn,
        FlowMatchRule::Mail,
        FlowMatchRule::ObjectId,
        FlowMatchRule::UpnLocalPart,
        FlowMatchRule::SamAccountName,
        FlowMatchRule::Email,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use strum::IntoEnumIterator;

    /// The derived string form of every variant is the serde name, and parses back.
    fn names_agree<T>()
    where
        T: IntoEnumIterator + Serialize + FromStr + fmt::Display + PartialEq + fmt::Debug + Copy,
        <T as FromStr>::Err: fmt::Debug,
    {
        for v in T::iter() {
            let serde_name = serde_json::to_value(v).unwrap();
            assert_eq!(
                serde_name,
                serde_json::Value::String(v.to_string()),
                "{v:?}"
            );
            assert_eq!(T::from_str(&v.to_string()).unwrap(), v);
        }
    }

    #[test]
    fn string_forms_are_the_serde_names() {
        names_agree::<FindingKind>();
        names_agree::<Cause>();
        names_agree::<FindingStatus>();
        names_agree::<ActionKind>();
        names_agree::<ActionStatus>();
        names_agree::<IfsMatchRule>();
        names_agree::<FlowMatchRule>();
        assert_eq!(
            FindingKind::DuplicateDirectoryId.as_str(),
            "duplicate_directory_id"
        );
        assert_eq!(Cause::MailVsUpn.as_str(), "mail_vs_upn");
        assert_eq!(FlowMatchRule::UpnLocalPart.to_string(), "upn_local_part");
        assert!("IdMismatch".parse::<FindingKind>().is_err());
    }

    #[test]
    fn normalized_id_folds_case_and_trims() {
        assert_eq!(
            NormalizedId::new("  JDoe@Contoso.COM "),
            NormalizedId::new("jdoe@contoso.com")
        );
        assert_eq!(NormalizedId::new("Straße"), NormalizedId::new("STRASSE"));
    }

    /// The fast path's premise, character by character and pair by pair:
    /// every Latin character alone, and next to every other one or to ASCII,
    /// folds as the general definition folds it.
    #[test]
    fn latin_fast_path_equals_the_definition_for_every_character_and_pair() {
        let ascii = ['a', 'Z', 'i', 'I', 's', 'S', 'j', 'n', '.', '@', '0', ' '];
        let mut checked = 0;
        for x in latin::range() {
            let one = x.to_string();
            assert_eq!(
                latin::fold(&one).as_deref(),
                Some(NormalizedId::caseless(&one).as_str()),
                "{x:?}"
            );
            for y in latin::range().chain(ascii) {
                for text in [format!("{x}{y}"), format!("{y}{x}")] {
                    let trimmed = text.trim();
                    assert_eq!(
                        latin::fold(trimmed).as_deref(),
                        Some(NormalizedId::caseless(trimmed).as_str()),
                        "{text:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 300_000, "{checked}");
        // Outside the range the fast path declines.
        assert_eq!(latin::fold("Ω"), None);
        assert_eq!(latin::fold("e\u{301}"), None);
        assert_eq!(latin::fold("\u{a0}x"), None);
    }

    proptest::proptest! {
        /// Both fast paths return what the definitions return, on Latin text
        /// mixed with combining marks, no-break spaces and other scripts.
        #[test]
        fn fast_paths_equal_the_definitions(
            raw in "[a-zA-Z .@\u{a0}\u{c0}-\u{24f}\u{300}-\u{36f}\u{391}-\u{3c9}ßİı]{0,12}",
            any in proptest::prelude::any::<String>(),
        ) {
            for text in [&raw, &any] {
                proptest::prop_assert_eq!(NormalizedId::new(text).0, NormalizedId::caseless(text));
                let nfc: String = text.trim().nfc().collect::<String>().trim().to_string();
                proptest::prop_assert_eq!(NormalizedId::case_sensitive(text).0, nfc);
            }
        }
    }

    #[test]
    fn normalized_id_unifies_composed_and_decomposed() {
        // "é" precomposed vs "e" + combining acute
        assert_eq!(
            NormalizedId::new("ren\u{e9}@x.se"),
            NormalizedId::new("rene\u{301}@x.se")
        );
    }

    #[test]
    fn case_sensitive_mode_keeps_case() {
        assert_ne!(
            NormalizedId::case_sensitive("JDoe"),
            NormalizedId::case_sensitive("jdoe")
        );
    }

    /// The JSON form is the one `String` fields had (the store and the
    /// snapshot files hold it), absent stays apart from empty, and the
    /// records are the packed size.
    #[test]
    fn users_serialise_as_plain_strings_and_are_packed() {
        let json = r#"{"id":"6f1c2a9e-0d3b-4c8e-9a51-2b7d4e8f0c13","userPrincipalName":"asa.oberg@contoso.com","mail":null,"displayName":"Åsa Öberg","accountEnabled":false,"employeeId":"E0000042","onPremisesSamAccountName":"asaobe","userType":"Member"}"#;
        let user: AadUser = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&user).unwrap(), json);
        assert_eq!(user.display_name(), Some("Åsa Öberg"));
        assert_eq!(user.id(), "6f1c2a9e-0d3b-4c8e-9a51-2b7d4e8f0c13");
        assert_eq!(user.mail(), None);
        assert!(!user.account_enabled());
        assert_eq!(AadUser::from(user.to_fields()), user);
        // Escaped text is decoded (it cannot be borrowed from the input).
        let escaped: AadUser =
            serde_json::from_str(r#"{"id":"1","userPrincipalName":"a\u00e5@x","mail":""}"#)
                .unwrap();
        assert_eq!(escaped.user_principal_name(), "a\u{e5}@x");
        assert_eq!(escaped.mail(), Some(""));
        assert!(escaped.account_enabled(), "absent means enabled");

        let flow = r#"{"user_id":"JDOE","name":"John Doe","email":null,"active":true,"user_type":"Full","sync_source":"AzureAD"}"#;
        let parsed: FlowUser = serde_json::from_str(flow).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), flow);
        assert_eq!(parsed.sync_source(), Some("AzureAD"));
        let ifs = r#"{"identity":"JDOE","description":"John Doe","directory_id":"jdoe@contoso.com","active":true,"email":null}"#;
        let parsed: IfsUser = serde_json::from_str(ifs).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), ifs);
        assert_eq!(parsed.directory_id(), Some("jdoe@contoso.com"));

        assert_eq!(std::mem::size_of::<AadUser>(), 48);
        assert_eq!(std::mem::size_of::<IfsUser>(), 32);
        assert_eq!(std::mem::size_of::<FlowUser>(), 40);
    }

    /// Keys are stored with each run and compared with the next run's:
    /// their form must never change.
    #[test]
    fn finding_keys_keep_their_stored_form() {
        let mut f = Finding::new(FindingKind::NotInAzure);
        assert_eq!(f.key(), "not_in_azure|-");
        f.flow_user_id = Some(" J.Doe ".into());
        assert_eq!(f.key(), "not_in_azure|flow:j.doe");
        f.ifs_identity = Some("ÅSA".into());
        assert_eq!(f.key(), "not_in_azure|ifs:åsa");
        f.kind = FindingKind::IdMismatch;
        f.aad_id = Some("0A1B-C".into());
        assert_eq!(f.key(), "id_mismatch|aad:0a1b-c");
    }

    #[test]
    fn guest_detection() {
        let mut u = AadUser::from(AadUserFields {
            id: "1".into(),
            user_principal_name: "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com".into(),
            mail: None,
            display_name: None,
            account_enabled: true,
            employee_id: None,
            on_premises_sam_account_name: None,
            user_type: None,
        });
        assert!(u.is_guest());
        u.edit(|f| f.user_principal_name = "jane@contoso.com".into());
        assert!(!u.is_guest());
        u.edit(|f| f.user_type = Some("Guest".into()));
        assert!(u.is_guest());
    }
}
