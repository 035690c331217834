//! The domain model shared by every part of idrecon: the users of each
//! system, the findings the core produces and the actions that fix Flow.
//!
//! Everything here is plain data. Raw values are always kept as they came
//! from the source (for display and for writes); comparisons go through
//! [`NormalizedId`].

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
        // Canonical caseless form (Unicode §3.13: NFD, fold, NFD), stored as NFC.
        // Folding can produce text that normalises differently, so repeat
        // until nothing changes; this makes the function idempotent.
        let mut current: String = raw.trim().to_string();
        loop {
            let decomposed: String = current.nfd().collect();
            let folded = caseless::default_case_fold_str(&decomposed);
            let next: String = folded.nfc().collect::<String>().trim().to_string();
            if next == current {
                return Self(next);
            }
            current = next;
        }
    }

    /// Case-sensitive normal form (`matching.case_sensitive = true`): trimmed and NFC only.
    pub fn case_sensitive(raw: &str) -> Self {
        let trimmed = raw.trim();
        if trimmed.is_ascii() {
            // NFC leaves ASCII unchanged.
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

/// A user of Azure AD (Microsoft Entra ID) as read from Microsoft Graph.
/// Field names follow Graph's JSON so snapshots can be stored as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AadUser {
    /// Object ID (a GUID string).
    pub id: String,
    pub user_principal_name: String,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default = "default_true")]
    pub account_enabled: bool,
    #[serde(default)]
    pub employee_id: Option<String>,
    #[serde(default)]
    pub on_premises_sam_account_name: Option<String>,
    /// `Member` or `Guest` (Graph's `userType`); may be absent.
    #[serde(default)]
    pub user_type: Option<String>,
}

impl AadUser {
    /// Guests: `userType = Guest` or a UPN carrying `#EXT#`.
    pub fn is_guest(&self) -> bool {
        self.user_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("guest"))
            || self.user_principal_name.contains("#EXT#")
    }
}

fn default_true() -> bool {
    true
}

/// A user of IFS Cloud as read from the OData `Users` entity set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfsUser {
    /// Key, upper case (e.g. `JDOE`).
    pub identity: String,
    /// Full name (`Description`).
    pub description: Option<String>,
    /// The Directory ID (`FND_USER.WEB_USER`); `None` or empty when unset.
    pub directory_id: Option<String>,
    pub active: bool,
    /// Optional e-mail, when the configured projection exposes one.
    pub email: Option<String>,
}

/// A user of Novacura Flow Server as delivered by the Flow endpoint or CSV.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowUser {
    pub user_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    /// Full, Machine, Transaction, Portal, Public or App.
    pub user_type: String,
    /// Non-empty when the user is maintained by Flow's AD sync (e.g. `AzureAD`).
    pub sync_source: Option<String>,
}

impl FlowUser {
    /// Machine users are service accounts: never orphans, never renamed.
    pub fn is_machine(&self) -> bool {
        self.user_type.eq_ignore_ascii_case("machine")
    }

    /// Maintained by Flow's AD sync: a rename would be undone by the next sync.
    pub fn is_sync_managed(&self) -> bool {
        self.sync_source
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty())
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
        let anchor = if let Some(id) = &self.aad_id {
            format!("aad:{}", id.to_ascii_lowercase())
        } else if let Some(identity) = &self.ifs_identity {
            format!("ifs:{}", NormalizedId::new(identity))
        } else if let Some(flow) = &self.flow_user_id {
            format!("flow:{}", NormalizedId::new(flow))
        } else {
            String::from("-")
        };
        format!("{}|{}", self.kind.as_str(), anchor)
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

    #[test]
    fn guest_detection() {
        let mut u = AadUser {
            id: "1".into(),
            user_principal_name: "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com".into(),
            mail: None,
            display_name: None,
            account_enabled: true,
            employee_id: None,
            on_premises_sam_account_name: None,
            user_type: None,
        };
        assert!(u.is_guest());
        u.user_principal_name = "jane@contoso.com".into();
        assert!(!u.is_guest());
        u.user_type = Some("Guest".into());
        assert!(u.is_guest());
    }
}
