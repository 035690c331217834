//! Root-cause advice: when most mismatched IDs share one cause, the fix is a
//! setting, not hundreds of renames.

use crate::model::{Cause, Finding, FindingKind};

/// A cause gets advice when it covers at least this many mismatches …
const MIN_FINDINGS: u64 = 3;
/// … and at least this share of all `id_mismatch` + `sync_managed` findings.
const MIN_SHARE: f64 = 0.5;
/// Sync-managed findings get their own advice from this many on.
const MIN_SYNC_MANAGED: u64 = 3;

/// Sentences naming the setting to change, with counts, for the causes that
/// cover most of the `id_mismatch` and `sync_managed` findings, and for many
/// sync-managed Flow users.
pub fn advice(findings: &[Finding]) -> Vec<String> {
    let mismatches: Vec<&Finding> = findings
        .iter()
        .filter(|f| matches!(f.kind, FindingKind::IdMismatch | FindingKind::SyncManaged))
        .collect();
    let total = mismatches.len() as u64;
    let mut out = Vec::new();
    for cause in [
        Cause::DomainStripped,
        Cause::CaseOnly,
        Cause::MailVsUpn,
        Cause::SamAccountName,
        Cause::ObjectId,
    ] {
        let n = mismatches.iter().filter(|f| f.cause == Some(cause)).count() as u64;
        if n >= MIN_FINDINGS && n as f64 >= MIN_SHARE * total as f64 {
            out.push(cause_advice(cause, n, total));
        }
    }
    let sync = mismatches
        .iter()
        .filter(|f| f.kind == FindingKind::SyncManaged)
        .count() as u64;
    if sync >= MIN_SYNC_MANAGED {
        out.push(format!(
            "{sync} Flow users with a wrong ID are maintained by Flow's AD sync: renaming them \
             would be undone by the next sync, so change the sync's user ID setting (turn on \
             'include domain', or take the ID from the attribute IFS uses as Directory ID) and \
             let the sync re-create them."
        ));
    }
    out
}

fn cause_advice(cause: Cause, n: u64, total: u64) -> String {
    match cause {
        Cause::DomainStripped => format!(
            "{n} of {total} mismatches are Flow IDs without the domain: turn on 'include domain' \
             in Flow's Azure AD sync, or set the OpenID claim mapping so Flow keeps the domain."
        ),
        Cause::CaseOnly => format!(
            "{n} of {total} mismatches differ only in letter case: if IFS sign-in ignores case, \
             set matching.case_sensitive = false; otherwise make Flow's AD sync / user creation \
             keep the casing of the IFS Directory ID."
        ),
        Cause::MailVsUpn => format!(
            "{n} of {total} mismatches use the mail address on one side and the UPN on the \
             other: make Flow's Azure AD sync and the OpenID claim mapping use the same \
             attribute as the IFS Directory ID (userPrincipalName or mail)."
        ),
        Cause::SamAccountName => format!(
            "{n} of {total} mismatches are Flow IDs set to the on-premises sAMAccountName: set \
             Flow's AD sync user ID to userPrincipalName (with 'include domain'), or the OpenID \
             claim mapping to the UPN."
        ),
        Cause::ObjectId => format!(
            "{n} of {total} mismatches are Flow IDs set to the Azure object ID: the OpenID claim \
             mapping key in Flow is probably 'oid' or 'sub'; set it to 'upn' (or \
             'preferred_username')."
        ),
        Cause::Other => format!("{n} of {total} mismatches follow no known pattern."),
    }
}
