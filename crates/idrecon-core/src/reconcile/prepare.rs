//! The per-source half of correlation: the normal forms and indexes of one
//! source's records (docs/semantics.md §0–§1). They need nothing from the
//! other sources, so a run can compute each as soon as its source is
//! fetched, while the others are still on the wire, and hand them to
//! [`reconcile_prepared`](super::reconcile_prepared).
//!
//! Forms are only ever used with the records and options they were made
//! from: each remembers which slice (address and length) and which
//! [`MatchOptions`] it was built for, and a form that does not fit the
//! snapshots it is given is ignored and computed again.

use super::column::{Column, Field};
use super::correlate::{ifs_order, IfsLinks};
use super::index::{push_ascii_key, push_normal, Indexed, NONE};
use super::parallel::both;
use super::MatchOptions;
use crate::model::{AadUser, FlowMatchRule, FlowUser, IfsMatchRule, IfsUser};

/// Which records and options a form was computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    address: usize,
    len: usize,
    opts: MatchOptions,
}

impl Origin {
    pub(crate) fn of<T>(records: &[T], opts: &MatchOptions) -> Self {
        Origin {
            address: records.as_ptr().addr(),
            len: records.len(),
            opts: opts.clone(),
        }
    }

    pub(crate) fn fits<T>(&self, records: &[T], opts: &MatchOptions) -> bool {
        self.address == records.as_ptr().addr() && self.len == records.len() && self.opts == *opts
    }
}

/// Forms that carry their [`Origin`].
pub(crate) trait HasOrigin {
    fn origin(&self) -> &Origin;
}

/// `prepared` if it was made from `records` with `opts`, else `new` ones.
pub(crate) fn fitting<T, F: HasOrigin>(
    prepared: Option<F>,
    records: &[T],
    opts: &MatchOptions,
    new: fn(&[T], &MatchOptions) -> F,
) -> F {
    match prepared {
        Some(forms) if forms.origin().fits(records, opts) => forms,
        _ => new(records, opts),
    }
}

/// [`fitting`] for borrowed forms: `forms` if made from `records` with
/// `opts`, else new ones, kept in `own`.
pub(crate) fn fitting_ref<'a, T, F: HasOrigin>(
    forms: &'a F,
    records: &[T],
    opts: &MatchOptions,
    new: fn(&[T], &MatchOptions) -> F,
    own: &'a mut Option<F>,
) -> &'a F {
    if forms.origin().fits(records, opts) {
        forms
    } else {
        own.insert(new(records, opts))
    }
}

fn wants_ifs(opts: &MatchOptions, rule: IfsMatchRule) -> bool {
    opts.ifs_rules.contains(&rule)
}

fn wants_flow(opts: &MatchOptions, rule: FlowMatchRule) -> bool {
    opts.flow_rules.contains(&rule)
}

/// Object-ID keys are needed only in case-sensitive mode with the
/// object_id rule (otherwise the normal forms serve).
fn wants_object_keys(opts: &MatchOptions) -> bool {
    opts.case_sensitive
        && (wants_ifs(opts, IfsMatchRule::ObjectId) || wants_flow(opts, FlowMatchRule::ObjectId))
}

/// Declares a [`Field`]: the raw value, of `$record`, that a column's
/// forms are derived from.
macro_rules! field {
    ($name:ident, $record:ty, |$r:ident| $raw:expr) => {
        pub(crate) struct $name;

        impl Field for $name {
            type Record = $record;
            fn raw($r: &$record) -> Option<&str> {
                $raw
            }
        }
    };
}

field!(AzureUpn, AadUser, |a| Some(a.user_principal_name()));
field!(AzureMail, AadUser, |a| a.mail());
field!(AzureSam, AadUser, |a| a.on_premises_sam_account_name());
field!(IfsDirectoryId, IfsUser, |i| i.directory_id());
field!(FlowUserId, FlowUser, |f| Some(f.user_id()));
field!(FlowEmail, FlowUser, |f| f.email());

/// The Azure side: which users are in scope, and the normal forms of the
/// UPN, mail and sAMAccountName of those that are.
pub struct AzureForms {
    origin: Origin,
    pub(crate) in_scope: Vec<bool>,
    pub(crate) upn: Column<AzureUpn>,
    pub(crate) mail: Column<AzureMail>,
    pub(crate) sam: Column<AzureSam>,
}

impl HasOrigin for AzureForms {
    fn origin(&self) -> &Origin {
        &self.origin
    }
}

impl AzureForms {
    pub fn new(azure: &[AadUser], opts: &MatchOptions) -> Self {
        let in_scope: Vec<bool> = azure
            .iter()
            .map(|a| opts.include_guests || !a.is_guest())
            .collect();
        let want_mail = wants_ifs(opts, IfsMatchRule::Mail)
            || wants_flow(opts, FlowMatchRule::Mail)
            || wants_flow(opts, FlowMatchRule::Email);
        let want_sam = wants_ifs(opts, IfsMatchRule::SamAccountName)
            || wants_flow(opts, FlowMatchRule::SamAccountName);
        let cs = opts.case_sensitive;
        // The UPN column on one thread, mail and sAMAccountName on another:
        // this runs while the other sources are still fetched, or, when
        // Azure AD comes last, on the way to the result.
        let (upn, (mail, sam)) = both(
            azure.len(),
            || azure_column(azure, &in_scope, true, cs),
            || {
                (
                    azure_column(azure, &in_scope, want_mail, cs),
                    azure_column(azure, &in_scope, want_sam, cs),
                )
            },
        );
        AzureForms {
            origin: Origin::of(azure, opts),
            in_scope,
            upn,
            mail,
            sam,
        }
    }
}

/// The normal forms of field `F` of the in-scope Azure users (an empty
/// column when no rule `wanted` it).
fn azure_column<F: Field<Record = AadUser>>(
    azure: &[AadUser],
    in_scope: &[bool],
    wanted: bool,
    case_sensitive: bool,
) -> Column<F> {
    if !wanted {
        return Column::empty(azure.len());
    }
    let mut column = Column::with_capacity(azure.len());
    for (a, &keep) in azure.iter().zip(in_scope) {
        column.push(a, keep, |raw, out| push_normal(raw, case_sensitive, out));
    }
    column.shrink();
    column
}

/// The IFS side: Directory IDs indexed by normal form (and by object-ID
/// key when needed) and the groups of users sharing one (§1).
pub struct IfsForms {
    origin: Origin,
    pub(crate) dir: Indexed<IfsDirectoryId>,
    /// Directory IDs as object-ID keys (only in case-sensitive mode with the object_id rule).
    pub(crate) obj: Indexed<IfsDirectoryId>,
    /// Duplicate group of each IFS user (`NONE` if none).
    pub(crate) group_of: Vec<u32>,
    /// Members of each duplicate group, sorted by identity.
    pub(crate) groups: Vec<Vec<u32>>,
}

impl HasOrigin for IfsForms {
    fn origin(&self) -> &Origin {
        &self.origin
    }
}

impl IfsForms {
    pub fn new(ifs: &[IfsUser], opts: &MatchOptions) -> Self {
        let dir = Indexed::new(Column::normal(ifs, opts.case_sensitive), ifs);
        let obj = if wants_object_keys(opts) {
            Column::build(ifs, push_ascii_key)
        } else {
            Column::empty(0)
        };
        let obj = Indexed::new(obj, ifs);
        let (group_of, groups) = duplicate_groups(ifs, &dir);
        IfsForms {
            origin: Origin::of(ifs, opts),
            dir,
            obj,
            group_of,
            groups,
        }
    }
}

/// §1: IFS users sharing a Directory ID, each group sorted by identity, and
/// the groups numbered in identity order (never in hash-table order).
fn duplicate_groups(ifs: &[IfsUser], dir: &Indexed<IfsDirectoryId>) -> (Vec<u32>, Vec<Vec<u32>>) {
    let mut group_of = vec![NONE; ifs.len()];
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let mut scratch = String::new();
    for head in dir.shared_keys() {
        let key = dir.form(ifs, head).as_str(&mut scratch);
        let mut members: Vec<u32> = dir.get(ifs, key).collect();
        members.sort_by(|&x, &y| ifs_order(&ifs[x as usize], &ifs[y as usize]));
        groups.push(members);
    }
    groups.sort_by(|x, y| ifs_order(&ifs[x[0] as usize], &ifs[y[0] as usize]));
    for (g, members) in groups.iter().enumerate() {
        for &m in members {
            group_of[m as usize] = g as u32;
        }
    }
    (group_of, groups)
}

/// The Flow side: user IDs and e-mails indexed by normal form (and IDs by
/// object-ID key when needed), and which users are machine users.
pub struct FlowForms {
    origin: Origin,
    pub(crate) id: Indexed<FlowUserId>,
    pub(crate) email: Indexed<FlowEmail>,
    /// User IDs as object-ID keys (only in case-sensitive mode with the object_id rule).
    pub(crate) obj: Indexed<FlowUserId>,
    /// Whether each Flow user is a machine user (never matched).
    pub(crate) machine: Vec<bool>,
}

impl HasOrigin for FlowForms {
    fn origin(&self) -> &Origin {
        &self.origin
    }
}

impl FlowForms {
    pub fn new(flow: &[FlowUser], opts: &MatchOptions) -> Self {
        let cs = opts.case_sensitive;
        // Flow is often the last source to arrive: its two indexes are built
        // on two threads.
        let (id, email) = both(
            flow.len(),
            || Indexed::new(Column::normal(flow, cs), flow),
            || {
                let email = if wants_flow(opts, FlowMatchRule::Email) {
                    Column::normal(flow, cs)
                } else {
                    Column::empty(flow.len())
                };
                Indexed::new(email, flow)
            },
        );
        FlowForms {
            origin: Origin::of(flow, opts),
            id,
            email,
            obj: flow_object_keys(flow, opts),
            machine: flow.iter().map(FlowUser::is_machine).collect(),
        }
    }
}

/// Flow's forms made a page at a time, while the next page is on the wire:
/// Flow is usually the last source in and its cursor pages come one after
/// the other, so what is done per page here is not left for after the last
/// one. Give [`Self::extend`] the users so far after each page (always the
/// same list, grown at its end) and [`Self::finish`] the whole list: the
/// result is what [`FlowForms::new`] makes of it.
pub struct FlowFormsByPage {
    opts: MatchOptions,
    id: Indexed<FlowUserId>,
    email: Indexed<FlowEmail>,
    machine: Vec<bool>,
}

impl FlowFormsByPage {
    /// `expected`: about how many users will come (e.g. the last run's
    /// count); only for sizing.
    pub fn new(opts: &MatchOptions, expected: usize) -> Self {
        let wants_email = wants_flow(opts, FlowMatchRule::Email);
        FlowFormsByPage {
            opts: opts.clone(),
            id: Indexed::growing(expected),
            email: Indexed::growing(if wants_email { expected } else { 0 }),
            machine: Vec::with_capacity(expected),
        }
    }

    /// Makes the forms of the users past those given before.
    pub fn extend(&mut self, users: &[FlowUser]) {
        let cs = self.opts.case_sensitive;
        self.id
            .extend(users, true, |raw, out| push_normal(raw, cs, out));
        let wants_email = wants_flow(&self.opts, FlowMatchRule::Email);
        self.email
            .extend(users, wants_email, |raw, out| push_normal(raw, cs, out));
        let from = self.machine.len().min(users.len());
        self.machine
            .extend(users[from..].iter().map(FlowUser::is_machine));
    }

    /// The forms of all of `users`.
    pub fn finish(mut self, users: &[FlowUser]) -> FlowForms {
        if self.machine.len() > users.len() {
            // Not the list it was given page by page: made anew.
            return FlowForms::new(users, &self.opts);
        }
        self.extend(users);
        self.id.shrink();
        self.email.shrink();
        FlowForms {
            origin: Origin::of(users, &self.opts),
            id: self.id,
            email: self.email,
            // Rarely wanted: made at the end.
            obj: flow_object_keys(users, &self.opts),
            machine: self.machine,
        }
    }
}

/// Flow user IDs indexed as object-ID keys, only in case-sensitive mode
/// with the object_id rule (else an empty index).
fn flow_object_keys(flow: &[FlowUser], opts: &MatchOptions) -> Indexed<FlowUserId> {
    let obj = if wants_object_keys(opts) {
        Column::build(flow, push_ascii_key)
    } else {
        Column::empty(0)
    };
    Indexed::new(obj, flow)
}

impl FlowForms {
    /// The index of the Flow users by ID, for the plan (see [`FlowIds`]).
    pub(crate) fn into_ids(self) -> FlowIds {
        FlowIds {
            address: self.origin.address,
            len: self.origin.len,
            case_sensitive: self.origin.opts.case_sensitive,
            index: self.id,
        }
    }
}

/// The Flow users indexed by their user ID's normal form, in one of the two
/// comparisons: correlation makes it (with `matching.case_sensitive`) and
/// the plan needs it (with Flow's own, `flow.case_insensitive_ids`); when
/// the two agree, the plan reuses correlation's instead of indexing every
/// Flow user again.
pub struct FlowIds {
    address: usize,
    len: usize,
    case_sensitive: bool,
    pub(crate) index: Indexed<FlowUserId>,
}

impl FlowIds {
    pub fn new(flow: &[FlowUser], case_sensitive: bool) -> Self {
        FlowIds {
            address: flow.as_ptr().addr(),
            len: flow.len(),
            case_sensitive,
            index: Indexed::new(Column::normal(flow, case_sensitive), flow),
        }
    }

    /// `prepared` if it indexes `flow` in that comparison, else a new index.
    pub(crate) fn fitting(
        prepared: Option<FlowIds>,
        flow: &[FlowUser],
        case_sensitive: bool,
    ) -> Self {
        match prepared {
            Some(ids)
                if ids.address == flow.as_ptr().addr()
                    && ids.len == flow.len()
                    && ids.case_sensitive == case_sensitive =>
            {
                ids
            }
            _ => FlowIds::new(flow, case_sensitive),
        }
    }
}

/// Forms computed ahead of [`reconcile_prepared`](super::reconcile_prepared),
/// and §2's links when Azure AD and IFS were both there before Flow; any of
/// them missing (those are computed there).
#[derive(Default)]
pub struct Prepared {
    pub azure: Option<AzureForms>,
    pub ifs: Option<IfsForms>,
    pub flow: Option<FlowForms>,
    pub ifs_links: Option<IfsLinks>,
}
