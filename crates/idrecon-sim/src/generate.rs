//! Deterministic generation of a tenant with realistic drift, and of the
//! findings docs/semantics.md predicts for it under the default matching
//! options.
//!
//! Each generated person gets one [`Archetype`] (drawn with the weights of
//! [`Archetype::WEIGHTS`], per mille). Every archetype is built so that its
//! state under the rule book is unambiguous: every person's UPN, mail,
//! `sAMAccountName` and IFS identity embeds the person's number, so no two
//! people's attributes can be equal under case folding, and every attribute
//! kind has its own shape (UPN/mail local parts contain a `.`, sam names
//! do not, object IDs are GUIDs).

use super::config::FLOW_USERNAME;
use super::Tenant;
use compact_str::{format_compact, CompactString};
use idrecon_core::model::{
    AadUser, AadUserFields, Cause, Finding, FindingKind, FlowUser, FlowUserFields, IfsUser,
    IfsUserFields,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use unicode_normalization::UnicodeNormalization;

/// Object ID of the generated group holding every Azure user that has an
/// IFS or Flow account (for `azure.group_id`).
pub const FLOW_USERS_GROUP_ID: &str = "f10e0000-0000-4000-8000-00000000f10e";

/// A generated tenant and the findings the core must produce for it.
#[derive(Clone, Debug)]
pub struct GeneratedTenant {
    pub tenant: Tenant,
    /// Exactly the findings of a run with default options, sorted by key.
    pub expected: Vec<ExpectedFinding>,
    /// How many people got each archetype.
    pub archetype_counts: Vec<(Archetype, usize)>,
}

/// One finding the core should produce.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExpectedFinding {
    pub kind: FindingKind,
    pub cause: Option<Cause>,
    /// Equals `model::Finding::key()` of the finding the core should produce.
    pub key: String,
}

/// The kinds of people the generator makes. "A", "I", "F" = has an Azure,
/// IFS, Flow account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Archetype {
    /// A+I+F, Flow ID = Directory ID = UPN. OK.
    Consistent,
    /// As `Consistent`, Flow user maintained by AD sync (with domain). OK.
    ConsistentSynced,
    /// Flow ID differs from the Directory ID in case only. OK by default
    /// (`case_only` mismatch with `matching.case_sensitive = true`).
    ConsistentCaseVariant,
    /// Directory ID in upper case, Flow ID as the UPN. OK.
    ConsistentIfsUpperCase,
    /// Non-ASCII name, Directory ID stored decomposed (NFD). OK.
    ConsistentDecomposed,
    /// Only in Azure (most of a real tenant). Out of scope.
    AzureOnly,
    /// Only in Azure, disabled. Out of scope.
    AzureOnlyDisabled,
    /// Guest, only in Azure. Excluded.
    Guest,
    /// Guest with a Flow account named after the guest's mail: the Flow
    /// user is linked to nobody (guests are excluded) → `not_in_azure`.
    GuestWithFlow,
    /// Flow ID without the domain, not synced → `id_mismatch`/`domain_stripped`.
    DomainStripped,
    /// Flow ID without the domain, AD-synced → `sync_managed`/`domain_stripped`.
    DomainStrippedSynced,
    /// Flow ID = mail, Directory ID = UPN (they differ) → `id_mismatch`/`mail_vs_upn`.
    MailVsUpn,
    /// Directory ID = mail, Flow ID = UPN → `id_mismatch`/`mail_vs_upn`.
    IfsMailFlowUpn,
    /// Flow ID = sAMAccountName → `id_mismatch`/`sam_account_name`.
    SamAccountName,
    /// Same, AD-synced → `sync_managed`/`sam_account_name`.
    SamAccountNameSynced,
    /// Flow ID = Azure object ID → `id_mismatch`/`object_id`.
    ObjectIdAsFlowId,
    /// A + active I, no F → `missing_in_flow`.
    MissingInFlow,
    /// A + inactive I, no F. Out of scope.
    MissingInFlowInactive,
    /// A + F, no I → `missing_in_ifs`.
    MissingInIfs,
    /// Deleted from Azure, still in IFS and Flow (at least one active) → `not_in_azure` (IFS anchor).
    LeaverIfsAndFlow,
    /// Deleted from Azure, active in Flow only → `not_in_azure` (Flow anchor).
    LeaverFlowOnly,
    /// Deleted from Azure, active in IFS only → `not_in_azure` (IFS anchor).
    LeaverIfsOnly,
    /// Deleted from Azure, inactive in IFS and Flow. Out of scope.
    LeaverInactive,
    /// Disabled in Azure, Flow user active → `disabled_in_azure`.
    DisabledInAzure,
    /// Disabled in Azure, Flow user inactive. Out of scope.
    DisabledFlowInactive,
    /// Active IFS user without Directory ID, nobody else → `directory_id_missing`.
    DirectoryIdMissing,
    /// Active IFS user without Directory ID, and the person's A+F →
    /// `directory_id_missing` (IFS anchor) + `missing_in_ifs` (Azure anchor).
    DirectoryIdMissingWithAzure,
    /// Inactive IFS user without Directory ID. Ignored.
    DirectoryIdMissingInactive,
    /// Two IFS users share the person's Directory ID; A+F → `duplicate_directory_id` (Azure anchor).
    DuplicateDirectoryId,
    /// Two IFS users share a leaver's Directory ID → `duplicate_directory_id` (IFS anchor).
    DuplicateDirectoryIdLeaver,
    /// A (no I) and two Flow accounts carrying the person's mail, neither
    /// matching by ID → `ambiguous`. Nobody else names the two Flow
    /// accounts, so they join the ambiguous person (docs/semantics.md §3):
    /// no `not_in_azure` for them.
    Ambiguous,
    /// A Flow machine (service) user. Never a finding.
    MachineUser,
    /// A+I+F, Flow ID without the domain, and a Flow machine user (a
    /// service account created under the person's name) holding the
    /// person's Directory ID. Machine users are never matched but still
    /// hold their IDs → `conflict`/`domain_stripped`; the rename is not
    /// planned (its target is taken).
    ConflictWithMachineUser,
}

impl Archetype {
    /// Weights per mille, in the order generation uses.
    pub const WEIGHTS: [(Archetype, u32); 33] = [
        (Archetype::Consistent, 553),
        (Archetype::ConsistentSynced, 100),
        (Archetype::ConsistentCaseVariant, 30),
        (Archetype::ConsistentIfsUpperCase, 15),
        (Archetype::ConsistentDecomposed, 10),
        (Archetype::AzureOnly, 130),
        (Archetype::AzureOnlyDisabled, 10),
        (Archetype::Guest, 10),
        (Archetype::GuestWithFlow, 2),
        (Archetype::DomainStripped, 25),
        (Archetype::DomainStrippedSynced, 25),
        (Archetype::MailVsUpn, 5),
        (Archetype::IfsMailFlowUpn, 3),
        (Archetype::SamAccountName, 6),
        (Archetype::SamAccountNameSynced, 2),
        (Archetype::ObjectIdAsFlowId, 2),
        (Archetype::MissingInFlow, 15),
        (Archetype::MissingInFlowInactive, 3),
        (Archetype::MissingInIfs, 10),
        (Archetype::LeaverIfsAndFlow, 8),
        (Archetype::LeaverFlowOnly, 3),
        (Archetype::LeaverIfsOnly, 3),
        (Archetype::LeaverInactive, 3),
        (Archetype::DisabledInAzure, 8),
        (Archetype::DisabledFlowInactive, 3),
        (Archetype::DirectoryIdMissing, 3),
        (Archetype::DirectoryIdMissingWithAzure, 2),
        (Archetype::DirectoryIdMissingInactive, 2),
        (Archetype::DuplicateDirectoryId, 2),
        (Archetype::DuplicateDirectoryIdLeaver, 1),
        (Archetype::Ambiguous, 2),
        (Archetype::MachineUser, 3),
        (Archetype::ConflictWithMachineUser, 1),
    ];

    /// True for the archetypes that are OK (in scope, no finding).
    pub fn is_consistent(self) -> bool {
        matches!(
            self,
            Archetype::Consistent
                | Archetype::ConsistentSynced
                | Archetype::ConsistentCaseVariant
                | Archetype::ConsistentIfsUpperCase
                | Archetype::ConsistentDecomposed
        )
    }

    /// True for the archetypes that are out of scope (no person in the report).
    pub fn is_out_of_scope(self) -> bool {
        matches!(
            self,
            Archetype::AzureOnly
                | Archetype::AzureOnlyDisabled
                | Archetype::Guest
                | Archetype::MissingInFlowInactive
                | Archetype::LeaverInactive
                | Archetype::DisabledFlowInactive
                | Archetype::DirectoryIdMissingInactive
                | Archetype::MachineUser
        )
    }
}

const FIRST_NAMES: &[&str] = &[
    "Anna",
    "Erik",
    "Lars",
    "Karin",
    "Maria",
    "Johan",
    "Åsa",
    "Björn",
    "Sören",
    "Çağrı",
    "José",
    "Zoë",
    "Chloé",
    "Jürgen",
    "Ingrid",
    "Per",
    "Mohammed",
    "Fatima",
    "Li",
    "Wei",
    "Seán",
    "Aoife",
    "Nils",
    "Emma",
    "Oskar",
    "Elin",
    "Märta",
    "Anna-Karin",
    "Jean-Luc",
    "Łukasz",
    "Ærin",
    "Ömer",
];

const LAST_NAMES: &[&str] = &[
    "Svensson",
    "Andersson",
    "Öberg",
    "Åström",
    "Nyström",
    "Yılmaz",
    "García",
    "O'Brien",
    "D'Angelo",
    "Müller",
    "Ng",
    "Li",
    "Kowalski",
    "Lindqvist",
    "Þórsson",
    "Dubois",
    "Nilsson",
    "Ekström",
    "Papadopoulos",
    "Smith",
    "Jensen",
    "Østergaard",
    "Nowak",
    "Fernández",
    "Strauß",
];

/// ASCII transliteration of the letters the name pools use.
fn ascii_fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            'å' | 'ä' | 'á' | 'à' | 'â' => out.push('a'),
            'Å' | 'Ä' | 'Á' | 'À' | 'Â' => out.push('A'),
            'ö' | 'ø' | 'ó' | 'ò' | 'ô' => out.push('o'),
            'Ö' | 'Ø' | 'Ó' | 'Ò' | 'Ô' => out.push('O'),
            'ü' | 'ú' | 'ù' => out.push('u'),
            'Ü' | 'Ú' => out.push('U'),
            'é' | 'è' | 'ê' | 'ë' => out.push('e'),
            'É' | 'È' => out.push('E'),
            'í' | 'ì' | 'ı' | 'ï' => out.push('i'),
            'ç' => out.push('c'),
            'Ç' => out.push('C'),
            'ğ' => out.push('g'),
            'ł' => out.push('l'),
            'Ł' => out.push('L'),
            'ñ' => out.push('n'),
            'ß' => out.push_str("ss"),
            'þ' => out.push_str("th"),
            'Þ' => out.push_str("Th"),
            'æ' => out.push_str("ae"),
            'Æ' => out.push_str("Ae"),
            c if c.is_ascii() => out.push(c),
            _ => {}
        }
    }
    out
}

/// Upper case that stays equal under case folding: the Turkish dotless `ı`
/// would become `I`, which folds to a dotted `i`, so it is kept.
fn fold_safe_upper(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let keep = c == 'ı';
            let upper: Vec<char> = if keep {
                vec![c]
            } else {
                c.to_uppercase().collect()
            };
            upper
        })
        .collect()
}

/// `åsa.öberg12` → `Åsa.Öberg12`: the capitalised form mail systems show.
fn capitalise_parts(local: &str) -> String {
    local
        .split('.')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The spellings of one name, computed once per generation.
struct NameForms {
    original: &'static str,
    is_ascii: bool,
    /// Lower case, e.g. `åsa`.
    lower: String,
    /// Lower case, ASCII, e.g. `asa`.
    folded: String,
    /// Capitalised lower case, e.g. `Åsa`.
    cap_lower: String,
    /// Capitalised ASCII, e.g. `Asa`.
    cap_folded: String,
    /// Up to three ASCII letters for the sAMAccountName.
    sam3: String,
}

impl NameForms {
    fn new(original: &'static str) -> Self {
        let lower = original.to_lowercase();
        let folded = ascii_fold(&lower);
        let sam3 = folded
            .chars()
            .filter(char::is_ascii_alphabetic)
            .take(3)
            .collect();
        NameForms {
            original,
            is_ascii: original.is_ascii(),
            cap_lower: capitalise_parts(&lower),
            cap_folded: capitalise_parts(&folded),
            lower,
            folded,
            sam3,
        }
    }
}

/// Every first and last name in all its spellings.
struct NameTable {
    first: Vec<NameForms>,
    last: Vec<NameForms>,
}

impl NameTable {
    fn new() -> Self {
        NameTable {
            first: FIRST_NAMES.iter().copied().map(NameForms::new).collect(),
            last: LAST_NAMES.iter().copied().map(NameForms::new).collect(),
        }
    }
}

/// The identity attributes of one generated person.
struct Person {
    n: usize,
    id: String,
    display: String,
    /// UPN local part, e.g. `anna.svensson12` (always contains a `.`).
    local: String,
    upn: String,
    mail: String,
    /// Letters and digits only, no `.`.
    sam: String,
    identity: String,
}

impl Person {
    fn new(rng: &mut ChaCha8Rng, names: &NameTable, n: usize, force_non_ascii: bool) -> Person {
        let (first, last) = loop {
            let first = &names.first[rng.gen_range(0..names.first.len())];
            let last = &names.last[rng.gen_range(0..names.last.len())];
            if !(force_non_ascii && first.is_ascii && last.is_ascii) {
                break (first, last);
            }
        };
        // Non-ASCII names keep their letters in the UPN half of the time.
        let keep_unicode = force_non_ascii || rng.gen_bool(0.5);
        let (local, mail) = if keep_unicode {
            (
                format!("{}.{}{n}", first.lower, last.lower),
                format!("{}.{}{n}@contoso.com", first.cap_lower, last.cap_lower),
            )
        } else {
            (
                format!("{}.{}{n}", first.folded, last.folded),
                format!("{}.{}{n}@contoso.com", first.cap_folded, last.cap_folded),
            )
        };
        let sam = format!("{}{}{n}", first.sam3, last.sam3);
        let bytes: [u8; 16] = rng.gen();
        let id = uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string();
        Person {
            n,
            id,
            display: format!("{} {}", first.original, last.original),
            upn: format!("{local}@contoso.com"),
            mail,
            identity: sam.to_ascii_uppercase(),
            sam,
            local,
        }
    }

    fn aad(&self, enabled: bool) -> AadUser {
        AadUser::from(AadUserFields {
            id: self.id.as_str().into(),
            user_principal_name: self.upn.as_str().into(),
            mail: Some(self.mail.as_str().into()),
            display_name: Some(self.display.as_str().into()),
            account_enabled: enabled,
            employee_id: Some(format_compact!("E{:07}", self.n)),
            on_premises_sam_account_name: Some(self.sam.as_str().into()),
            user_type: Some("Member".into()),
        })
    }

    fn ifs(&self, directory_id: Option<String>, active: bool) -> IfsUser {
        IfsUser::from(IfsUserFields {
            identity: self.identity.as_str().into(),
            description: Some(self.display.as_str().into()),
            directory_id: directory_id.map(CompactString::from),
            active,
            email: None,
        })
    }

    fn flow(&self, user_id: String, active: bool, sync: bool) -> FlowUser {
        FlowUser::from(FlowUserFields {
            user_id: user_id.into(),
            name: Some(self.display.as_str().into()),
            email: Some(self.mail.as_str().into()),
            active,
            user_type: "Full".into(),
            sync_source: sync.then(|| "AzureAD".into()),
        })
    }
}

/// Collects users and expected findings.
struct Builder {
    tenant: Tenant,
    group: Vec<String>,
    expected: Vec<ExpectedFinding>,
}

impl Builder {
    fn expect(&mut self, finding: Finding) {
        self.expected.push(ExpectedFinding {
            kind: finding.kind,
            cause: finding.cause,
            key: finding.key(),
        });
    }

    fn expect_aad(&mut self, kind: FindingKind, cause: Option<Cause>, aad_id: &str) {
        let mut f = Finding::new(kind);
        f.cause = cause;
        f.aad_id = Some(aad_id.to_string());
        self.expect(f);
    }

    fn expect_ifs(&mut self, kind: FindingKind, identity: &str) {
        let mut f = Finding::new(kind);
        f.ifs_identity = Some(identity.to_string());
        self.expect(f);
    }

    fn expect_flow(&mut self, kind: FindingKind, user_id: &str) {
        let mut f = Finding::new(kind);
        f.flow_user_id = Some(user_id.to_string());
        self.expect(f);
    }

    fn azure(&mut self, user: AadUser, in_group: bool) {
        if in_group {
            self.group.push(user.id().to_string());
        }
        self.tenant.azure.push(user);
    }

    /// Adds one person of archetype `a`.
    fn add(&mut self, rng: &mut ChaCha8Rng, names: &NameTable, n: usize, a: Archetype) {
        use Archetype as A;
        use FindingKind as K;
        let p = Person::new(rng, names, n, a == A::ConsistentDecomposed);
        match a {
            A::Consistent | A::ConsistentSynced => {
                self.azure(p.aad(true), true);
                self.tenant.ifs.push(p.ifs(Some(p.upn.clone()), true));
                self.tenant
                    .flow
                    .push(p.flow(p.upn.clone(), true, a == A::ConsistentSynced));
            }
            A::ConsistentCaseVariant => {
                self.azure(p.aad(true), true);
                self.tenant.ifs.push(p.ifs(Some(p.upn.clone()), true));
                let variant = format!("{}@CONTOSO.COM", capitalise_parts(&p.local));
                self.tenant.flow.push(p.flow(variant, true, false));
            }
            A::ConsistentIfsUpperCase => {
                self.azure(p.aad(true), true);
                self.tenant
                    .ifs
                    .push(p.ifs(Some(fold_safe_upper(&p.upn)), true));
                self.tenant.flow.push(p.flow(p.upn.clone(), true, false));
            }
            A::ConsistentDecomposed => {
                self.azure(p.aad(true), true);
                self.tenant
                    .ifs
                    .push(p.ifs(Some(p.upn.nfd().collect()), true));
                self.tenant.flow.push(p.flow(p.upn.clone(), true, false));
            }
            A::AzureOnly => self.azure(p.aad(true), false),
            A::AzureOnlyDisabled => self.azure(p.aad(false), false),
            A::Guest | A::GuestWithFlow => {
                let external = format!("{}@fabrikam.com", ascii_fold(&p.local));
                let guest = AadUser::from(AadUserFields {
                    id: p.id.as_str().into(),
                    user_principal_name: format_compact!(
                        "{}_fabrikam.com#EXT#@contoso.onmicrosoft.com",
                        ascii_fold(&p.local)
                    ),
                    mail: Some(external.as_str().into()),
                    display_name: Some(format_compact!("{} (Fabrikam)", p.display)),
                    account_enabled: true,
                    employee_id: None,
                    on_premises_sam_account_name: None,
                    user_type: Some("Guest".into()),
                });
                self.azure(guest, false);
                if a == A::GuestWithFlow {
                    let mut flow = p.flow(external.clone(), true, false);
                    flow.edit(|fields| fields.email = Some(external.as_str().into()));
                    self.tenant.flow.push(flow);
                    self.expect_flow(K::NotInAzure, &external);
                }
            }
            A::DomainStripped | A::DomainStrippedSynced => {
                self.azure(p.aad(true), true);
                self.tenant.ifs.push(p.ifs(Some(p.upn.clone()), true));
                let stripped = if n % 4 == 0 {
                    capitalise_parts(&p.local)
                } else {
                    p.local.clone()
                };
                let synced = a == A::DomainStrippedSynced;
                self.tenant.flow.push(p.flow(stripped, true, synced));
                let kind = if synced {
                    K::SyncManaged
                } else {
                    K::IdMismatch
                };
                self.expect_aad(kind, Some(Cause::DomainStripped), &p.id);
            }
            A::MailVsUpn | A::IfsMailFlowUpn => {
                let mut user = p.aad(true);
                let mail = format!("{}@contoso.se", capitalise_parts(&p.local));
                user.edit(|fields| fields.mail = Some(mail.as_str().into()));
                self.azure(user, true);
                let (directory_id, flow_id) = if a == A::MailVsUpn {
                    (p.upn.clone(), mail.clone())
                } else {
                    (mail.clone(), p.upn.clone())
                };
                self.tenant.ifs.push(p.ifs(Some(directory_id), true));
                let mut flow = p.flow(flow_id, true, false);
                flow.edit(|fields| fields.email = Some(mail.into()));
                self.tenant.flow.push(flow);
                self.expect_aad(K::IdMismatch, Some(Cause::MailVsUpn), &p.id);
            }
            A::SamAccountName | A::SamAccountNameSynced => {
                self.azure(p.aad(true), true);
                self.tenant.ifs.push(p.ifs(Some(p.upn.clone()), true));
                let synced = a == A::SamAccountNameSynced;
                self.tenant.flow.push(p.flow(p.sam.clone(), true, synced));
                let kind = if synced {
                    K::SyncManaged
                } else {
                    K::IdMismatch
                };
                self.expect_aad(kind, Some(Cause::SamAccountName), &p.id);
            }
            A::ObjectIdAsFlowId => {
                self.azure(p.aad(true), true);
                self.tenant.ifs.push(p.ifs(Some(p.upn.clone()), true));
                // `=` on object IDs ignores ASCII case: half are upper case.
                let flow_id = if n % 2 == 0 {
                    p.id.to_ascii_uppercase()
                } else {
                    p.id.clone()
                };
                self.tenant.flow.push(p.flow(flow_id, true, false));
                self.expect_aad(K::IdMismatch, Some(Cause::ObjectId), &p.id);
            }
            A::MissingInFlow | A::MissingInFlowInactive => {
                let active = a == A::MissingInFlow;
                self.azure(p.aad(true), true);
                self.tenant.ifs.push(p.ifs(Some(p.upn.clone()), active));
                if active {
                    self.expect_aad(K::MissingInFlow, None, &p.id);
                }
            }
            A::MissingInIfs => {
                self.azure(p.aad(true), true);
                self.tenant.flow.push(p.flow(p.upn.clone(), true, false));
                self.expect_aad(K::MissingInIfs, None, &p.id);
            }
            A::LeaverIfsAndFlow => {
                let (ifs_active, flow_active) = match n % 3 {
                    0 => (true, true),
                    1 => (false, true),
                    _ => (true, false),
                };
                self.tenant.ifs.push(p.ifs(Some(p.upn.clone()), ifs_active));
                self.tenant
                    .flow
                    .push(p.flow(p.upn.clone(), flow_active, false));
                self.expect_ifs(K::NotInAzure, &p.identity);
            }
            A::LeaverFlowOnly => {
                self.tenant.flow.push(p.flow(p.upn.clone(), true, false));
                self.expect_flow(K::NotInAzure, &p.upn);
            }
            A::LeaverIfsOnly => {
                self.tenant.ifs.push(p.ifs(Some(p.upn.clone()), true));
                self.expect_ifs(K::NotInAzure, &p.identity);
            }
            A::LeaverInactive => {
                self.tenant.ifs.push(p.ifs(Some(p.upn.clone()), false));
                self.tenant.flow.push(p.flow(p.upn.clone(), false, false));
            }
            A::DisabledInAzure | A::DisabledFlowInactive => {
                let flow_active = a == A::DisabledInAzure;
                self.azure(p.aad(false), true);
                self.tenant.ifs.push(p.ifs(Some(p.upn.clone()), true));
                self.tenant
                    .flow
                    .push(p.flow(p.upn.clone(), flow_active, false));
                if flow_active {
                    self.expect_aad(K::DisabledInAzure, None, &p.id);
                }
            }
            A::DirectoryIdMissing | A::DirectoryIdMissingInactive => {
                let active = a == A::DirectoryIdMissing;
                let empty = match n % 3 {
                    0 => None,
                    1 => Some(String::new()),
                    _ => Some("   ".to_string()),
                };
                self.tenant.ifs.push(p.ifs(empty, active));
                if active {
                    self.expect_ifs(K::DirectoryIdMissing, &p.identity);
                }
            }
            A::DirectoryIdMissingWithAzure => {
                self.azure(p.aad(true), true);
                self.tenant.ifs.push(p.ifs(None, true));
                self.tenant.flow.push(p.flow(p.upn.clone(), true, false));
                self.expect_ifs(K::DirectoryIdMissing, &p.identity);
                self.expect_aad(K::MissingInIfs, None, &p.id);
            }
            A::DuplicateDirectoryId | A::DuplicateDirectoryIdLeaver => {
                let first = p.ifs(Some(p.upn.clone()), true);
                let mut second = p.ifs(Some(fold_safe_upper(&p.upn)), true);
                second.edit(|fields| fields.identity = format_compact!("{}_OLD", p.identity));
                let mut identities = [first.identity().to_string(), second.identity().to_string()];
                identities.sort();
                self.tenant.ifs.push(first);
                self.tenant.ifs.push(second);
                if a == A::DuplicateDirectoryId {
                    self.azure(p.aad(true), true);
                    self.tenant.flow.push(p.flow(p.upn.clone(), true, false));
                    self.expect_aad(K::DuplicateDirectoryId, None, &p.id);
                } else {
                    self.expect_ifs(K::DuplicateDirectoryId, &identities.join(", "));
                }
            }
            A::Ambiguous => {
                self.azure(p.aad(true), true);
                // Both candidates stay with the ambiguous person (§3).
                for suffix in ["-old", "-2"] {
                    let id = format!("{}{suffix}", p.local);
                    self.tenant.flow.push(p.flow(id, true, false));
                }
                self.expect_aad(K::Ambiguous, None, &p.id);
            }
            A::MachineUser => self.tenant.flow.push(FlowUser::from(FlowUserFields {
                user_id: format_compact!("svc_integration{n}"),
                name: Some(format_compact!("Integration {n}")),
                email: None,
                active: true,
                user_type: "Machine".into(),
                sync_source: None,
            })),
            A::ConflictWithMachineUser => {
                self.azure(p.aad(true), true);
                self.tenant.ifs.push(p.ifs(Some(p.upn.clone()), true));
                // The person's own Flow user drifted (no domain): matched by
                // `upn_local_part`, since the machine user is never a candidate.
                self.tenant.flow.push(p.flow(p.local.clone(), true, false));
                // A service account under the person's UPN holds the expected ID.
                self.tenant.flow.push(FlowUser::from(FlowUserFields {
                    user_id: p.upn.as_str().into(),
                    name: Some(format_compact!("{} (service)", p.display)),
                    email: None,
                    active: true,
                    user_type: "Machine".into(),
                    sync_source: None,
                }));
                self.expect_aad(K::Conflict, Some(Cause::DomainStripped), &p.id);
            }
        }
    }
}

/// Generates `people` people deterministically from `seed`.
///
/// When `people` is at least the number of archetypes, the first people
/// take one archetype each, so even small tenants show every case; the rest
/// are drawn with [`Archetype::WEIGHTS`]. The Flow endpoint's own machine
/// user (`svc_idrecon`) is added on top.
pub fn generate(people: usize, seed: u64) -> GeneratedTenant {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let names = NameTable::new();
    let total_weight: u32 = Archetype::WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut builder = Builder {
        tenant: Tenant {
            azure: Vec::with_capacity(people),
            ifs: Vec::with_capacity(people * 85 / 100),
            flow: Vec::with_capacity(people * 85 / 100 + 1),
            groups: HashMap::new(),
        },
        group: Vec::with_capacity(people * 85 / 100),
        expected: Vec::with_capacity(people / 8),
    };
    builder.tenant.flow.push(FlowUser::from(FlowUserFields {
        user_id: FLOW_USERNAME.into(),
        name: Some("idrecon (Flow endpoint)".into()),
        email: None,
        active: true,
        user_type: "Machine".into(),
        sync_source: None,
    }));
    let mut counts: HashMap<Archetype, usize> = HashMap::new();
    let seeded = if people >= Archetype::WEIGHTS.len() {
        Archetype::WEIGHTS.len()
    } else {
        0
    };
    for n in 1..=people {
        let archetype = if n <= seeded {
            Archetype::WEIGHTS[n - 1].0
        } else {
            let mut draw = rng.gen_range(0..total_weight);
            Archetype::WEIGHTS
                .iter()
                .find(|(_, w)| {
                    if draw < *w {
                        true
                    } else {
                        draw -= w;
                        false
                    }
                })
                .map(|(a, _)| *a)
                .unwrap_or(Archetype::Consistent)
        };
        *counts.entry(archetype).or_insert(0) += 1;
        builder.add(&mut rng, &names, n, archetype);
    }
    let Builder {
        mut tenant,
        group,
        mut expected,
    } = builder;
    tenant.groups.insert(FLOW_USERS_GROUP_ID.to_string(), group);
    expected.sort();
    let archetype_counts = Archetype::WEIGHTS
        .iter()
        .map(|(a, _)| (*a, counts.get(a).copied().unwrap_or(0)))
        .collect();
    GeneratedTenant {
        tenant,
        expected,
        archetype_counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idrecon_core::model::NormalizedId;
    use std::collections::HashSet;

    #[test]
    fn weights_sum_to_one_thousand() {
        assert_eq!(Archetype::WEIGHTS.iter().map(|(_, w)| w).sum::<u32>(), 1000);
    }

    #[test]
    fn small_tenants_contain_every_archetype() {
        let g = generate(Archetype::WEIGHTS.len(), 1);
        assert!(g.archetype_counts.iter().all(|(_, n)| *n == 1));
    }

    #[test]
    fn attributes_are_unique_across_people_under_folding() {
        let g = generate(5000, 7);
        let mut seen = HashSet::new();
        for u in &g.tenant.azure {
            assert!(seen.insert(NormalizedId::new(u.user_principal_name())));
            assert!(seen.insert(NormalizedId::new(u.id())));
            if let Some(sam) = &u.on_premises_sam_account_name() {
                assert!(seen.insert(NormalizedId::new(sam)));
            }
        }
        let mut identities = HashSet::new();
        for u in &g.tenant.ifs {
            assert!(
                identities.insert(u.identity().to_string()),
                "{}",
                u.identity()
            );
        }
        let mut flow_ids = HashSet::new();
        for u in &g.tenant.flow {
            assert!(
                flow_ids.insert(NormalizedId::new(u.user_id())),
                "{}",
                u.user_id()
            );
        }
    }

    #[test]
    fn ascii_fold_and_capitalise() {
        assert_eq!(ascii_fold("åsa.öberg1"), "asa.oberg1");
        assert_eq!(ascii_fold("çağrı.yılmaz2"), "cagri.yilmaz2");
        assert_eq!(ascii_fold("strauß"), "strauss");
        assert_eq!(capitalise_parts("åsa.o'brien3"), "Åsa.O'brien3");
        let upper = fold_safe_upper("çağrı.yılmaz5@contoso.com");
        assert_eq!(upper, "ÇAĞRı.YıLMAZ5@CONTOSO.COM");
        assert_eq!(
            NormalizedId::new(&upper),
            NormalizedId::new("çağrı.yılmaz5@contoso.com")
        );
    }
}
