//! Builders shared by the core tests.

use idrecon_core::model::{
    AadUser, AadUserFields, Finding, FindingKind, FlowUser, FlowUserFields, IfsUser, IfsUserFields,
    Snapshots,
};
use idrecon_core::reconcile::{reconcile, MatchOptions, Outcome};

pub fn az(id: &str, upn: &str) -> AadUser {
    AadUser::from(AadUserFields {
        id: id.into(),
        user_principal_name: upn.into(),
        mail: None,
        display_name: None,
        account_enabled: true,
        employee_id: None,
        on_premises_sam_account_name: None,
        user_type: None,
    })
}

pub fn ifs(identity: &str, dir: &str) -> IfsUser {
    IfsUser::from(IfsUserFields {
        identity: identity.into(),
        description: None,
        directory_id: Some(dir.into()),
        active: true,
        email: None,
    })
}

pub fn flow(id: &str) -> FlowUser {
    FlowUser::from(FlowUserFields {
        user_id: id.into(),
        name: None,
        email: None,
        active: true,
        user_type: "Full".into(),
        sync_source: None,
    })
}

pub fn snap(azure: Vec<AadUser>, ifs: Vec<IfsUser>, flow: Vec<FlowUser>) -> Snapshots {
    Snapshots { azure, ifs, flow }
}

pub fn run(s: &Snapshots) -> Outcome {
    reconcile(s, &MatchOptions::default())
}

pub fn kinds(o: &Outcome) -> Vec<FindingKind> {
    o.findings.iter().map(|f| f.kind).collect()
}

pub fn only(o: &Outcome, kind: FindingKind) -> &Finding {
    let all: Vec<&Finding> = o.findings.iter().filter(|f| f.kind == kind).collect();
    assert_eq!(
        all.len(),
        1,
        "expected one {kind} finding in {:#?}",
        o.findings
    );
    all[0]
}

/// A rename finding as classify makes it (for planner tests).
pub fn mismatch(from: &str, to: &str) -> Finding {
    let mut f = Finding::new(FindingKind::IdMismatch);
    f.flow_user_id = Some(from.into());
    f.expected_flow_user_id = Some(to.into());
    f.aad_id = Some(format!("aad-{from}"));
    f.detail = format!("Flow user '{from}' should be '{to}'.");
    f
}
