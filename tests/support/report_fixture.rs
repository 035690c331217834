//! The fixed scenarios the report rendering tests share: one completed
//! apply run with every finding kind, several causes, actions in every
//! status and awkward names; and one aborted run.

use chrono::{TimeZone, Utc};
use idrecon::model::{
    Action, ActionKind, ActionStatus, Cause, Finding, FindingKind, FindingStatus,
};
use idrecon::report::{
    Mode, Report, RunStatus, SourceSummary, SourcesSummary, Summary, Trigger, SCHEMA_VERSION,
};
use std::collections::BTreeMap;

/// The display name that must never reach HTML unescaped.
pub const SCRIPT_NAME: &str = "<script>alert(1)</script>";
/// A display name that a spreadsheet would run as a formula.
pub const FORMULA_NAME: &str = "=HYPERLINK(\"http://evil.example\",\"click\")";
/// A detail with a comma, quotes and a line break (RFC 4180 quoting).
pub const QUOTED_DETAIL: &str = "two Flow users match: \"jdoe2\", \"j.doe\"\nresolve by hand";

#[allow(clippy::too_many_arguments)]
fn finding(
    kind: FindingKind,
    cause: Option<Cause>,
    status: FindingStatus,
    person: (Option<&str>, Option<&str>, Option<&str>),
    ifs: (Option<&str>, Option<&str>),
    flow: (Option<&str>, Option<&str>),
    action: (ActionKind, Option<ActionStatus>),
    detail: &str,
) -> Finding {
    let own = |v: Option<&str>| v.map(str::to_string);
    Finding {
        kind,
        cause,
        status,
        aad_id: own(person.0),
        upn: own(person.1),
        display_name: own(person.2),
        ifs_identity: own(ifs.0),
        ifs_directory_id: own(ifs.1),
        flow_user_id: own(flow.0),
        expected_flow_user_id: own(flow.1),
        action: action.0,
        action_status: action.1,
        detail: detail.to_string(),
    }
}

fn action(
    kind: ActionKind,
    from: &str,
    to: Option<&str>,
    status: ActionStatus,
    error: Option<&str>,
) -> Action {
    Action {
        kind,
        flow_user_id: from.to_string(),
        new_flow_user_id: to.map(str::to_string),
        status,
        error: error.map(str::to_string),
    }
}

/// Summary counts consistent with `findings`.
fn summary(people: u64, findings: &[Finding], resolved: u64) -> Summary {
    let mut by_kind = BTreeMap::new();
    let mut by_cause = BTreeMap::new();
    for f in findings {
        *by_kind.entry(f.kind).or_insert(0) += 1;
        if let Some(c) = f.cause {
            *by_cause.entry(c).or_insert(0) += 1;
        }
    }
    let new = findings
        .iter()
        .filter(|f| f.status == FindingStatus::New)
        .count() as u64;
    Summary {
        people,
        ok: people - findings.len() as u64,
        findings: findings.len() as u64,
        by_kind,
        by_cause,
        new,
        persisting: findings.len() as u64 - new,
        resolved_since_last_run: resolved,
    }
}

/// The findings of the completed scenario: every kind at least once.
pub fn findings() -> Vec<Finding> {
    use ActionKind as A;
    use ActionStatus as S;
    use Cause as C;
    use FindingKind as K;
    use FindingStatus::{New, Persisting};
    vec![
        finding(
            K::IdMismatch,
            Some(C::DomainStripped),
            New,
            (
                Some("3f1c9a2e-0b7d-4c5e-9a1f-2b3c4d5e6f70"),
                Some("jdoe@contoso.com"),
                Some("John Doe"),
            ),
            (Some("JDOE"), Some("jdoe@contoso.com")),
            (Some("jdoe"), Some("jdoe@contoso.com")),
            (A::Rename, Some(S::Applied)),
            "Flow ID is the UPN without its domain",
        ),
        finding(
            K::IdMismatch,
            Some(C::CaseOnly),
            Persisting,
            (
                Some("8d2e4f60-1a2b-4c3d-8e9f-0a1b2c3d4e5f"),
                Some("asa.oberg@contoso.se"),
                Some("Åsa Öberg"),
            ),
            (Some("AOBERG"), Some("Åsa.Öberg@contoso.se")),
            (Some("åsa.öberg@contoso.se"), Some("Åsa.Öberg@contoso.se")),
            (A::Rename, Some(S::Failed)),
            "IDs differ only in case",
        ),
        finding(
            K::IdMismatch,
            Some(C::MailVsUpn),
            New,
            (
                Some("0c9b8a7f-6e5d-4c3b-2a19-08f7e6d5c4b3"),
                Some("sean.obrien@contoso.com"),
                Some("Seán O'Brien"),
            ),
            (Some("SOBRIEN"), Some("sean.obrien@contoso.com")),
            (
                Some("s.o'brien@contoso.ie"),
                Some("sean.obrien@contoso.com"),
            ),
            (A::Rename, Some(S::Blocked)),
            "Flow ID is the mail address, IFS uses the UPN",
        ),
        finding(
            K::IdMismatch,
            Some(C::SamAccountName),
            New,
            (
                Some("5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"),
                Some("xss@contoso.com"),
                Some(SCRIPT_NAME),
            ),
            (Some("XSS"), Some("xss@contoso.com")),
            (Some("xss01"), Some("xss@contoso.com")),
            (A::Rename, Some(S::Planned)),
            "Flow ID is the on-premises sAMAccountName",
        ),
        finding(
            K::IdMismatch,
            Some(C::ObjectId),
            Persisting,
            (
                Some("9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a"),
                Some("li.lei@contoso.cn"),
                Some("李雷 (Li Lei)"),
            ),
            (Some("LILEI"), Some("li.lei@contoso.cn")),
            (
                Some("9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a"),
                Some("li.lei@contoso.cn"),
            ),
            (A::Rename, Some(S::Skipped)),
            "Flow ID is the Azure object ID",
        ),
        finding(
            K::MissingInFlow,
            None,
            New,
            (
                Some("1b2c3d4e-5f60-4718-89a0-b1c2d3e4f506"),
                Some("zoe.muller@contoso.de"),
                Some("Zoë Müller"),
            ),
            (Some("ZMULLER"), Some("zoe.muller@contoso.de")),
            (None, Some("zoe.muller@contoso.de")),
            (A::None, None),
            "Azure and IFS user, no Flow user",
        ),
        finding(
            K::MissingInIfs,
            None,
            Persisting,
            (
                Some("2c3d4e5f-6071-4829-9ab0-c1d2e3f40617"),
                Some("pat@contoso.com"),
                Some("-Admin, Service"),
            ),
            (None, None),
            (Some("pat@contoso.com"), None),
            (A::None, None),
            "Azure and Flow user, no IFS user",
        ),
        finding(
            K::NotInAzure,
            None,
            Persisting,
            (None, None, None),
            (None, None),
            (Some("old.user"), None),
            (A::Deactivate, Some(S::Skipped)),
            "skipped: fix.deactivate_orphans is false",
        ),
        finding(
            K::DisabledInAzure,
            None,
            New,
            (
                Some("3d4e5f60-7182-493a-abc1-d2e3f4051728"),
                Some("leaver@contoso.com"),
                Some("Lee Ver"),
            ),
            (Some("LVER"), Some("leaver@contoso.com")),
            (Some("leaver@contoso.com"), None),
            (A::Deactivate, Some(S::Applied)),
            "Azure account disabled, Flow user active",
        ),
        finding(
            K::Ambiguous,
            None,
            New,
            (
                Some("4e5f6071-8293-4a4b-bcd2-e3f405162839"),
                Some("jdoe2@contoso.com"),
                Some("Jane Doe"),
            ),
            (Some("JDOE2"), Some("jdoe2@contoso.com")),
            (None, Some("jdoe2@contoso.com")),
            (A::None, None),
            QUOTED_DETAIL,
        ),
        finding(
            K::Conflict,
            Some(C::Other),
            New,
            (
                Some("5f607182-93a4-4b5c-8de3-f4051627384a"),
                Some("anna@contoso.com"),
                Some("Anna Berg"),
            ),
            (Some("ABERG"), Some("anna@contoso.com")),
            (Some("a.berg"), Some("anna@contoso.com")),
            (A::None, None),
            "anna@contoso.com already belongs to another Flow user",
        ),
        finding(
            K::DirectoryIdMissing,
            None,
            Persisting,
            (None, None, None),
            (Some("NODIR"), None),
            (None, None),
            (A::None, None),
            "IFS user NODIR has an empty Directory ID",
        ),
        finding(
            K::DuplicateDirectoryId,
            None,
            New,
            (
                Some("60718293-a4b5-4c6d-9ef4-05162738495b"),
                Some("dup@contoso.com"),
                Some("Dup Licate"),
            ),
            (Some("DUP1"), Some("dup@contoso.com")),
            (None, None),
            (A::None, None),
            "IFS users DUP1, DUP2 share Directory ID dup@contoso.com",
        ),
        finding(
            K::SyncManaged,
            Some(C::DomainStripped),
            New,
            (
                Some("718293a4-b5c6-4d7e-8f05-16273849506c"),
                Some("formula@contoso.com"),
                Some(FORMULA_NAME),
            ),
            (Some("FORMULA"), Some("formula@contoso.com")),
            (Some("formula"), Some("formula@contoso.com")),
            (A::None, None),
            "maintained by Flow's AD sync (AzureAD): fix upstream",
        ),
    ]
}

/// The actions of the completed scenario: every status at least once.
pub fn actions() -> Vec<Action> {
    use ActionKind as A;
    use ActionStatus as S;
    vec![
        action(
            A::Rename,
            "jdoe",
            Some("jdoe@contoso.com"),
            S::Applied,
            None,
        ),
        action(
            A::Rename,
            "åsa.öberg@contoso.se",
            Some("Åsa.Öberg@contoso.se"),
            S::Failed,
            Some("Flow answered 500: {\"error\":\"internal\"}"),
        ),
        action(
            A::Rename,
            "s.o'brien@contoso.ie",
            Some("sean.obrien@contoso.com"),
            S::Blocked,
            Some("target taken by Flow user Sean.OBrien@contoso.com"),
        ),
        action(
            A::Rename,
            "xss01",
            Some("xss@contoso.com"),
            S::Planned,
            None,
        ),
        action(
            A::Rename,
            "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a",
            Some("li.lei@contoso.cn"),
            S::Skipped,
            Some("not reached: run stopped"),
        ),
        action(
            A::Deactivate,
            "old.user",
            None,
            S::Skipped,
            Some("fix.deactivate_orphans is false"),
        ),
        action(A::Deactivate, "leaver@contoso.com", None, S::Applied, None),
    ]
}

/// A completed apply run with every finding kind and action status.
pub fn completed() -> Report {
    let findings = findings();
    Report {
        schema_version: SCHEMA_VERSION,
        run_id: 42,
        trigger: Trigger::Manual,
        mode: Mode::Apply,
        status: RunStatus::Completed,
        abort_reason: None,
        started_at: Utc.with_ymd_and_hms(2026, 11, 26, 2, 0, 0).unwrap(),
        finished_at: Some(Utc.with_ymd_and_hms(2026, 11, 26, 2, 0, 7).unwrap()),
        sources: SourcesSummary {
            azure: SourceSummary { users: 1200, complete: true, delta: Some(false) },
            ifs: SourceSummary { users: 900, complete: true, delta: None },
            flow: SourceSummary { users: 950, complete: true, delta: None },
        },
        summary: summary(1300, &findings, 3),
        advice: vec![
            "1 of 5 mismatches are Flow IDs without the domain: Flow's AD sync probably maps sAMAccountName; set it to map userPrincipalName.".to_string(),
            "1 Flow user is maintained by AD sync: fix it upstream.".to_string(),
        ],
        findings,
        actions: actions(),
    }
}

/// A scheduled run aborted because the Flow listing was incomplete.
pub fn aborted() -> Report {
    Report {
        schema_version: SCHEMA_VERSION,
        run_id: 43,
        trigger: Trigger::Schedule,
        mode: Mode::Report,
        status: RunStatus::Aborted,
        abort_reason: Some(
            "Flow source incomplete: GET /users answered 503 on page 3 (cursor \"c3\"); nothing was changed"
                .to_string(),
        ),
        started_at: Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0).unwrap(),
        finished_at: Some(Utc.with_ymd_and_hms(2026, 11, 27, 2, 1, 5).unwrap()),
        sources: SourcesSummary {
            azure: SourceSummary { users: 1210, complete: true, delta: Some(true) },
            ifs: SourceSummary { users: 905, complete: true, delta: None },
            flow: SourceSummary { users: 400, complete: false, delta: None },
        },
        summary: Summary::default(),
        advice: vec![],
        findings: vec![],
        actions: vec![],
    }
}

/// `n` id_mismatch findings, for size tests.
pub fn many(n: usize) -> Report {
    let template = findings().swap_remove(0);
    let findings: Vec<Finding> = (0..n)
        .map(|i| Finding {
            upn: Some(format!("user{i}@contoso.com")),
            display_name: Some(format!("User Number {i}")),
            flow_user_id: Some(format!("user{i}")),
            expected_flow_user_id: Some(format!("user{i}@contoso.com")),
            ..template.clone()
        })
        .collect();
    let mut report = completed();
    report.summary = summary(n as u64 + 10, &findings, 0);
    report.findings = findings;
    report.actions = vec![];
    report
}
