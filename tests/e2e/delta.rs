//! End to end: the second run reads only Azure AD's changes (Graph delta
//! query) and reports exactly the changed people as new, the fixed ones as
//! resolved and the rest as persisting; `--full` and an expired delta link
//! list everything again.

use crate::{app_support, e2e_support};

use app_support::*;
use e2e_support::*;
use idrecon::job::RunRequest;
use idrecon::model::{
    AadUser, AadUserFields, Cause, Finding, FindingKind, FindingStatus, FlowUser, FlowUserFields,
    IfsUser, IfsUserFields,
};
use idrecon::report::{Report, RunStatus};
use idrecon::sim::SimHandle;
use idrecon::store::Store;
use std::collections::BTreeSet;

const PEOPLE: usize = 2_000;
const SEED: u64 = 5;

fn aad_key(kind: FindingKind, aad_id: &str) -> String {
    let mut f = Finding::new(kind);
    f.aad_id = Some(aad_id.to_string());
    f.key()
}

fn ifs_key(kind: FindingKind, identity: &str) -> String {
    let mut f = Finding::new(kind);
    f.ifs_identity = Some(identity.to_string());
    f.key()
}

/// A person whose three accounts agree exactly: (Azure, IFS, Flow).
type Consistent = (AadUser, IfsUser, FlowUser);

/// Consistent people without any expected finding, in tenant order.
fn consistent_people(handle: &SimHandle, findings: &BTreeSet<String>) -> Vec<Consistent> {
    let ifs = handle.ifs_users();
    let flow = handle.flow_users();
    handle
        .azure_users()
        .into_iter()
        .filter(|a| a.account_enabled() && !a.is_guest())
        .filter(|a| {
            !findings
                .iter()
                .any(|k| k.ends_with(&format!("|aad:{}", a.id())))
        })
        .filter_map(|a| {
            let upn = a.user_principal_name();
            let i = ifs
                .iter()
                .find(|i| i.active() && i.directory_id() == Some(upn))?;
            let f = flow.iter().find(|f| {
                f.user_id() == upn && f.active() && f.sync_source().is_none() && !f.is_machine()
            })?;
            Some((a, i.clone(), f.clone()))
        })
        .collect()
}

fn keys(report: &Report) -> BTreeSet<String> {
    report.findings.iter().map(Finding::key).collect()
}

/// The Azure user of an expected finding of `kind` (and `cause`).
fn person_with(app: &TestApp, kind: FindingKind, cause: Option<Cause>) -> AadUser {
    let f = app
        .generated
        .expected
        .iter()
        .find(|f| f.kind == kind && f.cause == cause && f.key.contains("|aad:"))
        .unwrap_or_else(|| panic!("the tenant has a {kind:?} person"));
    let id = f.key.split("|aad:").nth(1).expect("aad anchor");
    app.handle
        .azure_users()
        .into_iter()
        .find(|u| u.id().eq_ignore_ascii_case(id))
        .expect("the Azure user of the finding")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_run_reads_only_changes_and_classifies_them() {
    let app = spawn_app(PEOPLE, SEED).await;
    let h = app.handle.clone();

    // Run 1: the initial delta round lists everyone and stores the link.
    let before = h.request_count("/graph/v1.0/users");
    let run1 = app.report_only().await;
    let run1_requests = h.request_count("/graph/v1.0/users") - before;
    assert_eq!(run1.status, RunStatus::Completed, "{:?}", run1.abort_reason);
    assert_eq!(run1.sources.azure.delta, Some(false));
    // A "from now on" delta link, then everyone in pages of 999.
    let azure = h.azure_users().len() as u64;
    assert_eq!(
        run1_requests,
        1 + azure.div_ceil(999),
        "the first listing pages through everyone"
    );
    assert_expected_findings("run 1", &app, &run1);
    let keys1 = keys(&run1);

    // The people to change.
    let consistent = consistent_people(&h, &keys1);
    assert!(consistent.len() > 10);
    let (p_disable, p_delete, p_upn, p_flow_strip, p_ifs_delete) = (
        &consistent[0],
        &consistent[1],
        &consistent[2],
        &consistent[3],
        &consistent[4],
    );
    let stripped = person_with(&app, FindingKind::IdMismatch, Some(Cause::DomainStripped));
    let missing_flow = person_with(&app, FindingKind::MissingInFlow, None);

    // Azure AD: disable one, delete one, add one (with an IFS user), change a UPN.
    let new_id = "0e2e0000-0000-4000-8000-0000000e2e01";
    let new_upn = "newcomer.e2e1@contoso.com";
    let renamed_upn = format!("renamed.{}", p_upn.0.user_principal_name());
    h.update_azure(|users| {
        for u in users.iter_mut() {
            if u.id() == p_disable.0.id() {
                u.edit(|fields| fields.account_enabled = false);
            }
            if u.id() == p_upn.0.id() {
                u.edit(|fields| {
                    fields.user_principal_name = renamed_upn.as_str().into();
                    fields.mail = Some(renamed_upn.as_str().into());
                });
            }
        }
        users.retain(|u| u.id() != p_delete.0.id());
        users.push(AadUser::from(AadUserFields {
            id: new_id.into(),
            user_principal_name: new_upn.into(),
            mail: Some(new_upn.into()),
            display_name: Some("Newcomer E2E".into()),
            account_enabled: true,
            employee_id: None,
            on_premises_sam_account_name: None,
            user_type: Some("Member".into()),
        }));
    });
    // IFS: the newcomer gets a user; one consistent person loses theirs.
    h.update_ifs(|users| {
        users.retain(|u| u.identity() != p_ifs_delete.1.identity());
        users.push(IfsUser::from(IfsUserFields {
            identity: "NEWCOMERE2E1".into(),
            description: Some("Newcomer E2E".into()),
            directory_id: Some(new_upn.into()),
            active: true,
            email: None,
        }));
    });
    // Flow: fix a stripped domain and a missing account; strip another domain.
    let stripped_ifs = h
        .ifs_users()
        .into_iter()
        .find(|i| i.directory_id() == Some(stripped.user_principal_name()))
        .expect("IFS user of the stripped-domain person");
    let stripped_local = stripped
        .user_principal_name()
        .split('@')
        .next()
        .expect("local part")
        .to_string();
    let missing_ifs = h
        .ifs_users()
        .into_iter()
        .find(|i| i.directory_id() == Some(missing_flow.user_principal_name()))
        .expect("IFS user of the missing-in-Flow person");
    let strip_target = p_flow_strip
        .2
        .user_id()
        .split('@')
        .next()
        .expect("local part")
        .to_string();
    h.update_flow(|users| {
        for u in users.iter_mut() {
            if u.user_id().eq_ignore_ascii_case(&stripped_local) {
                u.edit(|fields| {
                    fields.user_id = stripped_ifs.directory_id().expect("directory id").into()
                });
            } else if u.user_id() == p_flow_strip.2.user_id() {
                u.edit(|fields| fields.user_id = strip_target.as_str().into());
            }
        }
        users.push(FlowUser::from(FlowUserFields {
            user_id: missing_ifs.directory_id().expect("directory id").into(),
            name: missing_flow.display_name().map(Into::into),
            email: missing_flow.mail().map(Into::into),
            active: true,
            user_type: "Full".into(),
            sync_source: None,
        }));
    });

    // Run 2: only the changes are read.
    let before = h.request_count("/graph/v1.0/users");
    let run2 = app.report_only().await;
    let run2_requests = h.request_count("/graph/v1.0/users") - before;
    assert_eq!(run2.status, RunStatus::Completed, "{:?}", run2.abort_reason);
    assert_eq!(run2.sources.azure.delta, Some(true));
    assert_eq!(
        run2_requests, 1,
        "a delta round with a handful of changes is one page, not a listing"
    );
    let members = h.azure_users().iter().filter(|u| !u.is_guest()).count();
    assert_eq!(run2.sources.azure.users, members as u64);

    let want_new: BTreeSet<String> = [
        aad_key(FindingKind::DisabledInAzure, p_disable.0.id()),
        ifs_key(FindingKind::NotInAzure, p_delete.1.identity()),
        aad_key(FindingKind::MissingInFlow, new_id),
        ifs_key(FindingKind::NotInAzure, p_upn.1.identity()),
        aad_key(FindingKind::IdMismatch, p_flow_strip.0.id()),
        aad_key(FindingKind::MissingInIfs, p_ifs_delete.0.id()),
    ]
    .into();
    let want_resolved: BTreeSet<String> = [
        aad_key(FindingKind::IdMismatch, stripped.id()),
        aad_key(FindingKind::MissingInFlow, missing_flow.id()),
    ]
    .into();
    assert!(want_resolved.is_subset(&keys1));
    let want_persisting: BTreeSet<String> = keys1.difference(&want_resolved).cloned().collect();

    assert_eq!(keys_with_status(&run2, FindingStatus::New), want_new);
    assert_eq!(
        keys_with_status(&run2, FindingStatus::Persisting),
        want_persisting
    );
    assert_eq!(run2.summary.new, want_new.len() as u64);
    assert_eq!(run2.summary.persisting, want_persisting.len() as u64);
    assert_eq!(
        run2.summary.resolved_since_last_run,
        want_resolved.len() as u64
    );
    let stripped_again = run2
        .findings
        .iter()
        .find(|f| f.aad_id.as_deref() == Some(p_flow_strip.0.id()))
        .expect("the newly stripped person");
    assert_eq!(stripped_again.cause, Some(Cause::DomainStripped));
    assert_eq!(
        stripped_again.expected_flow_user_id.as_deref(),
        Some(p_flow_strip.1.directory_id().expect("dir id"))
    );

    // `--full` lists everyone again and concludes the same.
    let before = h.request_count("/graph/v1.0/users");
    let run3 = app
        .reconcile(&RunRequest {
            full: true,
            ..RunRequest::manual()
        })
        .await
        .report;
    let run3_requests = h.request_count("/graph/v1.0/users") - before;
    assert_eq!(run3.status, RunStatus::Completed, "{:?}", run3.abort_reason);
    assert_eq!(run3.sources.azure.delta, Some(false));
    assert!(run3_requests >= run1_requests - 1, "{run3_requests}");
    assert_same_findings(
        "--full after delta",
        &finding_ids(&run3),
        &finding_ids(&run2),
    );
    assert_eq!(run3.summary.new, 0);
    assert_eq!(run3.summary.resolved_since_last_run, 0);

    // And the run after `--full` is a delta run again, with nothing changed.
    let run4 = app.report_only().await;
    assert_eq!(run4.sources.azure.delta, Some(true));
    assert_same_findings(
        "delta after --full",
        &finding_ids(&run4),
        &finding_ids(&run2),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_delta_link_resyncs_in_full() {
    let app = spawn_app(PEOPLE, SEED + 1).await;
    let h = app.handle.clone();
    let run1 = app.report_only().await;
    assert_eq!(run1.status, RunStatus::Completed);
    let keys1 = keys(&run1);
    let consistent = consistent_people(&h, &keys1);
    let victim = &consistent[0];

    // A change, then every delta link expires (Graph keeps them ~7 days).
    h.update_azure(|users| {
        for u in users.iter_mut() {
            if u.id() == victim.0.id() {
                u.edit(|fields| fields.account_enabled = false);
            }
        }
    });
    h.expire_delta_tokens();

    let before = h.request_count("/graph/v1.0/users");
    let run2 = app.report_only().await;
    let requests = h.request_count("/graph/v1.0/users") - before;
    assert_eq!(run2.status, RunStatus::Completed, "{:?}", run2.abort_reason);
    assert_eq!(run2.sources.azure.delta, Some(false), "a full resync");
    assert_eq!(
        requests,
        1 + 1 + h.azure_users().len().div_ceil(999) as u64,
        "the expired link, a fresh \"latest\" link, then the full listing"
    );
    let disabled = aad_key(FindingKind::DisabledInAzure, victim.0.id());
    assert_eq!(
        keys_with_status(&run2, FindingStatus::New),
        BTreeSet::from([disabled.clone()])
    );
    let mut want = keys1.clone();
    want.insert(disabled);
    assert_eq!(keys(&run2), want);

    // The resync stored a fresh link: the next run is a delta run again.
    let before = h.request_count("/graph/v1.0/users");
    let run3 = app.report_only().await;
    assert_eq!(run3.sources.azure.delta, Some(true));
    assert_eq!(h.request_count("/graph/v1.0/users") - before, 1);
    assert_eq!(keys(&run3), keys(&run2));
    assert_eq!(run3.summary.new, 0);
}

/// A full listing over a stored snapshot writes only what changed (the
/// difference of the two): whatever changed in between, the stored snapshot
/// is afterwards exactly Azure AD's users, and the next run is a delta run
/// that agrees with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_listing_over_a_stored_snapshot_stores_exactly_azure() {
    let app = spawn_app(PEOPLE, SEED + 2).await;
    let h = app.handle.clone();
    let run1 = app.report_only().await;
    assert_eq!(run1.status, RunStatus::Completed, "{:?}", run1.abort_reason);
    let consistent = consistent_people(&h, &keys(&run1));
    let (changed, deleted) = (&consistent[0].0, &consistent[1].0);
    h.update_azure(|users| {
        for u in users.iter_mut() {
            if u.id() == changed.id() {
                u.edit(|fields| {
                    fields.display_name = Some("Changed While Away".into());
                    fields.account_enabled = false;
                });
            }
        }
        users.retain(|u| u.id() != deleted.id());
        users.push(AadUser::from(AadUserFields {
            id: "0e2e0000-0000-4000-8000-0000000e2e77".into(),
            user_principal_name: "latecomer.e2e@contoso.com".into(),
            mail: None,
            display_name: Some("Latecomer".into()),
            account_enabled: true,
            employee_id: Some("E77".into()),
            on_premises_sam_account_name: None,
            user_type: Some("Member".into()),
        }));
    });

    let run2 = app
        .reconcile(&RunRequest {
            full: true,
            ..RunRequest::manual()
        })
        .await
        .report;
    assert_eq!(run2.status, RunStatus::Completed, "{:?}", run2.abort_reason);
    assert_eq!(run2.sources.azure.delta, Some(false));

    let mut azure: Vec<AadUser> = h
        .azure_users()
        .into_iter()
        .filter(|u| !u.is_guest())
        .collect();
    azure.sort_by(|a, b| a.id().cmp(b.id()));
    let stored = app
        .store()
        .await
        .load_azure_snapshot(&app.sources().azure_scope())
        .await
        .unwrap()
        .expect("a stored snapshot");
    assert_eq!(stored.users.len(), azure.len());
    assert!(stored.users == azure, "the stored snapshot is not Azure's");
    assert!(stored.delta_link.is_some());

    let run3 = app.report_only().await;
    assert_eq!(run3.sources.azure.delta, Some(true));
    assert_eq!(keys(&run3), keys(&run2));
}
