//! Correlation (docs/semantics.md §0–§4): links the Azure, IFS and Flow
//! records of one set of snapshots into people.
//!
//! Every record of the snapshots lands in exactly one [`Person`] (records
//! out of scope in a person with [`Link::Excluded`]). Each normal form is
//! computed once per record and every rule is a hash lookup, so the work is
//! linear in the number of records.

use super::column::Field;
use super::hits::{first_hits, Buffers, Found};
use super::index::{local_part, push_ascii_key, push_normal, Indexed, NONE};
use super::parallel::{in_parallel, join, MIN_RECORDS_FOR_THREADS};
use super::prepare::{
    fitting, fitting_ref, AzureForms, FlowForms, FlowIds, IfsForms, Origin, Prepared,
};
use super::MatchOptions;
use crate::model::{AadUser, FlowMatchRule, FlowUser, IfsMatchRule, IfsUser, Snapshots};
use rustc_hash::FxHashMap;
use std::cmp::Ordering;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};

/// One person: the records that belong together, as indices into the
/// snapshot vectors ([`azure`](Self::azure), [`ifs`](Self::ifs),
/// [`flow`](Self::flow)), and what correlation decided.
///
/// The indices are kept as `u32` with `u32::MAX` for none (24 bytes a
/// person instead of 40 with `Option<u32>`: there are over a million of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    azure: u32,
    ifs: u32,
    flow: u32,
    pub link: Link,
    /// Azure + IFS + Flow linked and the Flow ID `≈` the IFS Directory ID.
    pub flow_id_agrees: bool,
    /// Further records and facts, for the few people that have them.
    pub more: Option<Box<More>>,
}

/// What correlation decided about a person; [`classify`](super::classify)
/// turns it into exactly one state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// An in-scope Azure user with at most one IFS and one Flow user (§5.2–§5.5 decide).
    Linked,
    /// IFS and/or Flow user without an Azure user (§4): `not_in_azure` if
    /// either is active, else out of scope.
    Orphan,
    /// §2/§3: several candidates, or a tie for a contested record.
    Ambiguous,
    /// §1: IFS users sharing one Directory ID (`ifs` + `more.other_ifs`).
    DuplicateDirectoryId,
    /// §0: an active IFS user with an empty Directory ID.
    DirectoryIdMissing,
    /// §0: a record that takes no part (never a finding).
    Excluded(Exclusion),
}

/// Why a record is out of scope before matching (§0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exclusion {
    /// An Azure guest while `include_guests` is off.
    Guest,
    /// A Flow `Machine` user (service account).
    MachineUser,
    /// An inactive IFS user with an empty Directory ID.
    InactiveWithoutDirectoryId,
}

/// The rarer parts of a person.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct More {
    /// Further IFS users: the other members of a duplicate group (sorted by
    /// identity), then candidates of an ambiguous match nobody else took.
    pub other_ifs: Vec<u32>,
    /// Further Flow users: candidates of an ambiguous match nobody else took.
    pub other_flow: Vec<u32>,
    pub ambiguity: Option<Ambiguity>,
    /// Another Flow user that already holds this person's expected ID
    /// (`≈` the IFS Directory ID), for Azure + IFS + Flow people whose IDs differ.
    pub expected_id_holder: Option<u32>,
}

/// Why an Azure user is ambiguous, per side.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Ambiguity {
    pub ifs: Option<AmbiguousLink<IfsMatchRule>>,
    pub flow: Option<AmbiguousLink<FlowMatchRule>>,
}

/// One ambiguous match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AmbiguousLink<R> {
    /// Several records (sorted) match under the first hitting `rule`.
    Candidates { rule: R, records: Vec<u32> },
    /// `record` is claimed at the same best `rule` by every Azure user in
    /// `azure` (sorted by object ID, this one included); it joined the first.
    Tie {
        rule: R,
        record: u32,
        azure: Vec<u32>,
    },
}

/// Owner of a record taken by a person without an Azure user.
const TAKEN: u32 = NONE - 1;

/// [`Correlator::directory_id_hits`] of an Azure user it did not look up.
const NOT_LOOKED_UP: u32 = NONE;
/// … of one whose IFS user's Directory ID no Flow ID matches.
const FOUND_NONE: u32 = NONE - 1;
/// … of one whose IFS user's Directory ID several Flow IDs match.
const FOUND_SEVERAL: u32 = NONE - 2;

/// Links the records of `snapshots` into people (docs/semantics.md §0–§4).
pub fn correlate(snapshots: &Snapshots, opts: &MatchOptions) -> Vec<Person> {
    correlate_prepared(snapshots, opts, Prepared::default())
}

/// [`correlate`] with the per-source forms that were computed ahead (as
/// each source arrived); missing ones, or ones made from other records or
/// options, are computed here, the three sides on separate threads.
pub fn correlate_prepared(
    snapshots: &Snapshots,
    opts: &MatchOptions,
    prepared: Prepared,
) -> Vec<Person> {
    correlate_keeping_flow_ids(snapshots, opts, prepared).0
}

/// [`correlate_prepared`], handing back the index of the Flow users by ID
/// it made, for the plan.
pub(crate) fn correlate_keeping_flow_ids(
    snapshots: &Snapshots,
    opts: &MatchOptions,
    prepared: Prepared,
) -> (Vec<Person>, FlowIds) {
    let Prepared {
        azure,
        ifs,
        flow,
        ifs_links,
    } = prepared;
    let (azure, ifs, flow) = std::thread::scope(|scope| {
        let azure = scope.spawn(move || fitting(azure, &snapshots.azure, opts, AzureForms::new));
        let flow = scope.spawn(move || fitting(flow, &snapshots.flow, opts, FlowForms::new));
        let ifs = fitting(ifs, &snapshots.ifs, opts, IfsForms::new);
        (join(azure), ifs, join(flow))
    });
    let side = IfsSide {
        azure_users: &snapshots.azure,
        ifs_users: &snapshots.ifs,
        opts,
        azure: &azure,
        ifs: &ifs,
    };
    let links = match ifs_links {
        Some(links) if links.fits(&snapshots.azure, &snapshots.ifs, opts) => links,
        _ => side.link(),
    };
    let people = Correlator {
        s: snapshots,
        opts,
        side,
        flow: &flow,
    }
    .run(links);
    (people, flow.into_ids())
}

/// The Azure ↔ Flow rules in the order they are tried: `ifs_directory_id`
/// (the Flow ID is already the IFS Directory ID) always first, then the
/// configured rules in their order, each once. Ranking another rule above it
/// would let a Flow user that was just renamed to its person's Directory ID
/// be claimed by someone else on the next run: renames back and forth.
pub fn effective_flow_rules(configured: &[FlowMatchRule]) -> Vec<FlowMatchRule> {
    let mut rules = vec![FlowMatchRule::IfsDirectoryId];
    for &rule in configured {
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    rules
}

/// Total orders on records, so every choice is independent of input order.
pub(crate) fn azure_order(x: &AadUser, y: &AadUser) -> Ordering {
    x.id()
        .bytes()
        .map(|b| b.to_ascii_lowercase())
        .cmp(y.id().bytes().map(|b| b.to_ascii_lowercase()))
        .then_with(|| x.id().cmp(y.id()))
        .then_with(|| x.user_principal_name().cmp(y.user_principal_name()))
        .then_with(|| x.mail().cmp(&y.mail()))
        .then_with(|| x.display_name().cmp(&y.display_name()))
        .then_with(|| {
            x.on_premises_sam_account_name()
                .cmp(&y.on_premises_sam_account_name())
        })
        .then_with(|| x.employee_id().cmp(&y.employee_id()))
        .then_with(|| x.user_type().cmp(&y.user_type()))
        .then_with(|| x.account_enabled().cmp(&y.account_enabled()))
}

pub(crate) fn ifs_order(x: &IfsUser, y: &IfsUser) -> Ordering {
    x.identity()
        .cmp(y.identity())
        .then_with(|| x.directory_id().cmp(&y.directory_id()))
        .then_with(|| x.description().cmp(&y.description()))
        .then_with(|| x.active().cmp(&y.active()))
        .then_with(|| x.email().cmp(&y.email()))
}

pub(crate) fn flow_order(x: &FlowUser, y: &FlowUser) -> Ordering {
    x.user_id()
        .cmp(y.user_id())
        .then_with(|| x.name().cmp(&y.name()))
        .then_with(|| x.email().cmp(&y.email()))
        .then_with(|| x.active().cmp(&y.active()))
        .then_with(|| x.user_type().cmp(y.user_type()))
        .then_with(|| x.sync_source().cmp(&y.sync_source()))
}

/// The claims of one side (§2 or §3): each Azure user claims at most one
/// target at a rank; the best rank wins, a tie at the best rank makes every
/// tied Azure user ambiguous and the target joins the smallest object ID.
struct Claims {
    /// Per Azure user: the claimed target (`NONE`: none) and the rank.
    target: Vec<u32>,
    rank: Vec<u32>,
    /// Per target: the best rank, how many claim it there, and the smallest
    /// of those Azure users.
    best_rank: Vec<u32>,
    count: Vec<u32>,
    first: Vec<u32>,
}

/// The links decided by [`Claims::resolve`].
struct Resolved {
    /// Per Azure user: the target it is linked to (`NONE`: none).
    linked: Vec<u32>,
    /// Per target: the Azure user it is linked to (`NONE`: none).
    owner: Vec<u32>,
    /// Tied targets: (target, rank, the tied Azure users sorted by object ID).
    ties: Vec<(u32, u32, Vec<u32>)>,
}

impl Claims {
    fn new(azure: usize, targets: usize) -> Self {
        Claims {
            target: vec![NONE; azure],
            rank: vec![u32::MAX; azure],
            best_rank: vec![u32::MAX; targets],
            count: vec![0; targets],
            first: vec![NONE; targets],
        }
    }

    fn offer(&mut self, azure: u32, target: u32, rank: u32, azure_users: &[AadUser]) {
        self.target[azure as usize] = target;
        self.rank[azure as usize] = rank;
        let t = target as usize;
        if rank < self.best_rank[t] {
            self.best_rank[t] = rank;
            self.count[t] = 1;
            self.first[t] = azure;
        } else if rank == self.best_rank[t] {
            self.count[t] = self.count[t].saturating_add(1);
            let current = &azure_users[self.first[t] as usize];
            if azure_order(&azure_users[azure as usize], current) == Ordering::Less {
                self.first[t] = azure;
            }
        }
    }

    /// [`Claims::offer`] for every Azure user with a hit (`(target, rank)`
    /// per Azure user, `NONE` for none), in Azure order.
    fn offer_all(&mut self, hits: &[(u32, u32)], azure_users: &[AadUser]) {
        for (a, &(target, rank)) in hits.iter().enumerate() {
            if target != NONE {
                self.offer(a as u32, target, rank, azure_users);
            }
        }
    }

    fn resolve(self, azure_users: &[AadUser]) -> Resolved {
        let mut linked = vec![NONE; self.target.len()];
        let mut owner = vec![NONE; self.best_rank.len()];
        let mut tied: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        for (a, (&target, &rank)) in self.target.iter().zip(&self.rank).enumerate() {
            let t = target as usize;
            if target == NONE || rank != self.best_rank[t] {
                continue; // no claim, or lost to a better rank
            }
            if self.count[t] > 1 {
                tied.entry(target).or_default().push(a as u32);
            }
            if self.first[t] == a as u32 {
                linked[a] = target;
                owner[t] = a as u32;
            }
        }
        let mut ties: Vec<(u32, u32, Vec<u32>)> = tied
            .into_iter()
            .map(|(target, mut azure)| {
                azure.sort_by(|&x, &y| {
                    azure_order(&azure_users[x as usize], &azure_users[y as usize])
                });
                (target, self.best_rank[target as usize], azure)
            })
            .collect();
        ties.sort_unstable_by_key(|(target, _, _)| *target);
        Resolved {
            linked,
            owner,
            ties,
        }
    }
}

/// §2, Azure ↔ IFS: all it needs is the Azure and IFS records and their
/// forms, so a run can decide it while Flow is still being fetched.
struct IfsSide<'a> {
    azure_users: &'a [AadUser],
    ifs_users: &'a [IfsUser],
    opts: &'a MatchOptions,
    azure: &'a AzureForms,
    ifs: &'a IfsForms,
}

/// The Azure ↔ IFS links of §2, decided ahead of the rest of correlation
/// (see [`IfsLinks::new`]) or inside it.
pub struct IfsLinks {
    /// The Azure users, IFS users and options they were decided for.
    azure: Origin,
    ifs: Origin,
    /// Per Azure user: the IFS target (an IFS user, or `n_ifs + g` for
    /// duplicate group `g`) it is linked to, `NONE` for none.
    linked: Vec<u32>,
    /// Per IFS target: the Azure user linked to it, `NONE` for none.
    owner: Vec<u32>,
    /// Azure users whose IFS side is ambiguous.
    ambiguous: Vec<(u32, AmbiguousLink<IfsMatchRule>)>,
}

impl IfsLinks {
    /// Decides §2 for `azure` and `ifs` with their forms (forms made from
    /// other records or options are made again).
    pub fn new(
        azure: &[AadUser],
        azure_forms: &AzureForms,
        ifs: &[IfsUser],
        ifs_forms: &IfsForms,
        opts: &MatchOptions,
    ) -> Self {
        let (mut own_azure, mut own_ifs) = (None, None);
        let azure_forms = fitting_ref(azure_forms, azure, opts, AzureForms::new, &mut own_azure);
        let ifs_forms = fitting_ref(ifs_forms, ifs, opts, IfsForms::new, &mut own_ifs);
        IfsSide {
            azure_users: azure,
            ifs_users: ifs,
            opts,
            azure: azure_forms,
            ifs: ifs_forms,
        }
        .link()
    }

    fn fits(&self, azure: &[AadUser], ifs: &[IfsUser], opts: &MatchOptions) -> bool {
        self.azure.fits(azure, opts) && self.ifs.fits(ifs, opts)
    }
}

struct Correlator<'a> {
    s: &'a Snapshots,
    opts: &'a MatchOptions,
    side: IfsSide<'a>,
    flow: &'a FlowForms,
}

impl IfsSide<'_> {
    fn n_ifs(&self) -> u32 {
        self.ifs_users.len() as u32
    }

    /// The claimable target of an IFS user: itself, or its duplicate group.
    fn ifs_target(&self, i: u32) -> u32 {
        match self.ifs.group_of[i as usize] {
            NONE => i,
            g => self.n_ifs() + g,
        }
    }

    /// The IFS user that represents a target.
    fn ifs_representative(&self, target: u32) -> u32 {
        if target < self.n_ifs() {
            target
        } else {
            self.ifs.groups[(target - self.n_ifs()) as usize][0]
        }
    }

    /// `key` and `scratch`: buffers for a key that has to be written out.
    fn ifs_candidates(
        &self,
        rule: IfsMatchRule,
        a: u32,
        key: &mut String,
        scratch: &mut String,
        out: &mut Vec<u32>,
    ) {
        let (azure, ifs) = (self.azure_users, self.ifs_users);
        let dir = &self.ifs.dir;
        match rule {
            IfsMatchRule::Upn => {
                out.extend(dir.get(ifs, self.azure.upn.form(azure, a).as_str(key)))
            }
            IfsMatchRule::Mail => {
                out.extend(dir.get(ifs, self.azure.mail.form(azure, a).as_str(key)))
            }
            IfsMatchRule::SamAccountName => {
                out.extend(dir.get(ifs, self.azure.sam.form(azure, a).as_str(key)))
            }
            IfsMatchRule::ObjectId => object_id_matches(
                self.opts.case_sensitive,
                azure[a as usize].id(),
                dir,
                &self.ifs.obj,
                ifs,
                scratch,
                out,
            ),
        }
    }

    /// §2 Azure ↔ IFS: each Azure user's first hitting rule, then the claims.
    fn link(&self) -> IfsLinks {
        let (azure, ifs) = (self.azure_users, self.ifs_users);
        let opts = self.opts;
        let hits = first_hits(azure.len(), &self.azure.in_scope, |a, buffers| {
            let Buffers {
                key,
                scratch,
                candidates: cands,
            } = buffers;
            for (rank, &rule) in opts.ifs_rules.iter().enumerate() {
                cands.clear();
                self.ifs_candidates(rule, a, key, scratch, cands);
                let Some(&first) = cands.first() else {
                    continue;
                };
                let target = self.ifs_target(first);
                if cands.iter().all(|&i| self.ifs_target(i) == target) {
                    return Some((rank as u32, Found::One(target)));
                }
                let mut records = cands.clone();
                records.sort_by(|&x, &y| ifs_order(&ifs[x as usize], &ifs[y as usize]));
                return Some((rank as u32, Found::Several(records)));
            }
            None
        });
        let mut claims = Claims::new(azure.len(), ifs.len() + self.ifs.groups.len());
        claims.offer_all(&hits.one, azure);
        let mut ambiguous: Vec<(u32, AmbiguousLink<IfsMatchRule>)> = hits
            .several
            .into_iter()
            .map(|(a, rank, records)| {
                let rule = opts.ifs_rules[rank as usize];
                (a, AmbiguousLink::Candidates { rule, records })
            })
            .collect();
        let Resolved {
            linked,
            owner,
            ties,
        } = claims.resolve(azure);
        for (target, rank, tied) in ties {
            let tie = AmbiguousLink::Tie {
                rule: opts.ifs_rules[rank as usize],
                record: self.ifs_representative(target),
                azure: tied.clone(),
            };
            ambiguous.extend(tied.into_iter().map(|a| (a, tie.clone())));
        }
        IfsLinks {
            azure: Origin::of(azure, opts),
            ifs: Origin::of(ifs, opts),
            linked,
            owner,
            ambiguous,
        }
    }
}

/// Records whose raw ID equals the object ID `id` (ASCII
/// case-insensitive, trimmed).
fn object_id_matches<F: Field>(
    case_sensitive: bool,
    id: &str,
    normal: &Indexed<F>,
    object: &Indexed<F>,
    records: &[F::Record],
    scratch: &mut String,
    out: &mut Vec<u32>,
) {
    let id = id.trim();
    if id.is_empty() {
        return;
    }
    scratch.clear();
    if case_sensitive {
        push_ascii_key(id, scratch);
        out.extend(object.get(records, scratch));
    } else {
        // Equal ignoring ASCII case implies equal normal forms.
        push_normal(id, false, scratch);
        out.extend(normal.get(records, scratch).filter(|&r| {
            let raw = records.get(r as usize).and_then(F::raw).unwrap_or("");
            raw.trim().eq_ignore_ascii_case(id)
        }));
    }
}

impl<'a> Correlator<'a> {
    fn azure_cmp(&self, x: u32, y: u32) -> Ordering {
        azure_order(&self.s.azure[x as usize], &self.s.azure[y as usize])
    }

    fn flow_candidates(
        &self,
        rule: FlowMatchRule,
        a: u32,
        ifs_target: u32,
        key: &mut String,
        scratch: &mut String,
        out: &mut Vec<u32>,
    ) {
        let (azure, flow) = (&self.s.azure[..], &self.s.flow[..]);
        let id = &self.flow.id;
        match rule {
            FlowMatchRule::IfsDirectoryId => {
                if ifs_target != NONE {
                    let representative = self.side.ifs_representative(ifs_target);
                    let key = self
                        .side
                        .ifs
                        .dir
                        .form(&self.s.ifs, representative)
                        .as_str(key);
                    out.extend(id.get(flow, key));
                }
            }
            FlowMatchRule::Upn => {
                out.extend(id.get(flow, self.side.azure.upn.form(azure, a).as_str(key)))
            }
            FlowMatchRule::Mail => {
                out.extend(id.get(flow, self.side.azure.mail.form(azure, a).as_str(key)))
            }
            FlowMatchRule::ObjectId => object_id_matches(
                self.opts.case_sensitive,
                azure[a as usize].id(),
                id,
                &self.flow.obj,
                flow,
                scratch,
                out,
            ),
            FlowMatchRule::UpnLocalPart => {
                if let Some(local) = local_part(self.side.azure.upn.form(azure, a).as_str(key)) {
                    out.extend(id.get(flow, local));
                }
            }
            FlowMatchRule::SamAccountName => {
                out.extend(id.get(flow, self.side.azure.sam.form(azure, a).as_str(key)))
            }
            FlowMatchRule::Email => {
                let key = self.side.azure.mail.form(azure, a).as_str(key);
                out.extend(self.flow.email.get(flow, key))
            }
        }
        out.retain(|&f| !self.flow.machine[f as usize]);
    }

    /// What §3's first rule (`ifs_directory_id`) finds for each Azure user
    /// linked to one IFS user (`owner`: the Azure user of each IFS target):
    /// the one Flow user, [`FOUND_NONE`], [`FOUND_SEVERAL`], or
    /// [`NOT_LOOKED_UP`] for the others (the rule's loop looks those up).
    ///
    /// The lookups go in IFS order, two threads sharing the IFS users: in
    /// Azure order, reading each IFS user's Directory ID missed the cache
    /// about three times a person, now it reads the IFS side front to back.
    fn directory_id_hits(&self, owner: &[u32]) -> Vec<u32> {
        let n_ifs = self.s.ifs.len();
        let in_scope = &self.side.azure.in_scope;
        let found: Vec<AtomicU32> = (0..self.s.azure.len())
            .map(|_| AtomicU32::new(NOT_LOOKED_UP))
            .collect();
        let per_thread = n_ifs.div_ceil(2).max(MIN_RECORDS_FOR_THREADS);
        let found_ref = &found;
        in_parallel((0..n_ifs).step_by(per_thread).map(|start| {
            move || {
                let mut buffers = Buffers::default();
                for i in start..(start + per_thread).min(n_ifs) {
                    let a = owner.get(i).copied().unwrap_or(NONE);
                    if !in_scope.get(a as usize).copied().unwrap_or(false) {
                        continue;
                    }
                    let Buffers {
                        key,
                        scratch,
                        candidates,
                    } = &mut buffers;
                    candidates.clear();
                    let rule = FlowMatchRule::IfsDirectoryId;
                    self.flow_candidates(rule, a, i as u32, key, scratch, candidates);
                    let result = match candidates[..] {
                        [] => FOUND_NONE,
                        [f] => f,
                        _ => FOUND_SEVERAL,
                    };
                    found_ref[a as usize].store(result, AtomicOrdering::Relaxed);
                }
            }
        }));
        found.into_iter().map(AtomicU32::into_inner).collect()
    }

    /// The only free, non-machine Flow user whose ID `≈ key` (§4), taken.
    fn take_leftover_flow(&self, key: &str, flow_owner: &mut [u32], owner: u32) -> Option<u32> {
        let mut free = self
            .flow
            .id
            .get(&self.s.flow, key)
            .filter(|&f| !self.flow.machine[f as usize] && flow_owner[f as usize] == NONE);
        let first = free.next()?;
        if free.next().is_some() {
            return None;
        }
        flow_owner[first as usize] = owner;
        Some(first)
    }

    fn run(self, links: IfsLinks) -> Vec<Person> {
        let in_scope = &self.side.azure.in_scope;
        let s = self.s;
        let opts = self.opts;
        let n_az = s.azure.len();
        let n_ifs = s.ifs.len();
        let n_flow = s.flow.len();
        let mut ambiguity: FxHashMap<u32, Ambiguity> = FxHashMap::default();

        // §2 Azure ↔ IFS, decided already.
        let IfsLinks {
            linked: az_ifs,
            owner: mut ifs_owner,
            ambiguous,
            ..
        } = links;
        for (a, link) in ambiguous {
            ambiguity.entry(a).or_default().ifs = Some(link);
        }

        // §3 Azure ↔ Flow, the same way.
        let flow_rules = effective_flow_rules(&opts.flow_rules);
        let by_directory_id = self.directory_id_hits(&ifs_owner);
        let hits = first_hits(n_az, in_scope, |a, buffers| {
            let Buffers {
                key,
                scratch,
                candidates: cands,
            } = buffers;
            for (rank, &rule) in flow_rules.iter().enumerate() {
                if rule == FlowMatchRule::IfsDirectoryId {
                    match by_directory_id
                        .get(a as usize)
                        .copied()
                        .unwrap_or(NOT_LOOKED_UP)
                    {
                        FOUND_NONE => continue,
                        FOUND_SEVERAL | NOT_LOOKED_UP => {} // looked up below
                        f => return Some((rank as u32, Found::One(f))),
                    }
                }
                cands.clear();
                self.flow_candidates(rule, a, az_ifs[a as usize], key, scratch, cands);
                match cands.len() {
                    0 => continue,
                    1 => return Some((rank as u32, Found::One(cands[0]))),
                    _ => {
                        let mut records = cands.clone();
                        records
                            .sort_by(|&x, &y| flow_order(&s.flow[x as usize], &s.flow[y as usize]));
                        return Some((rank as u32, Found::Several(records)));
                    }
                }
            }
            None
        });
        let mut claims = Claims::new(n_az, n_flow);
        claims.offer_all(&hits.one, &s.azure);
        for (a, rank, records) in hits.several {
            ambiguity.entry(a).or_default().flow = Some(AmbiguousLink::Candidates {
                rule: flow_rules[rank as usize],
                records,
            });
        }
        let Resolved {
            linked: az_flow,
            owner: mut flow_owner,
            ties,
        } = claims.resolve(&s.azure);
        for (target, rank, azure) in ties {
            let tie = AmbiguousLink::Tie {
                rule: flow_rules[rank as usize],
                record: target,
                azure: azure.clone(),
            };
            for a in azure {
                ambiguity.entry(a).or_default().flow = Some(tie.clone());
            }
        }

        // Candidates of ambiguous matches that nobody else took stay with the
        // ambiguous person (smallest object ID first) instead of becoming orphans.
        let mut ambiguous: Vec<u32> = ambiguity.keys().copied().collect();
        ambiguous.sort_by(|&x, &y| self.azure_cmp(x, y));
        let mut more: FxHashMap<u32, More> = FxHashMap::default();
        for a in ambiguous {
            let Some(amb) = ambiguity.remove(&a) else {
                continue;
            };
            let mut m = More::default();
            if let Some(AmbiguousLink::Candidates { records, .. }) = &amb.ifs {
                for &i in records {
                    if self.side.ifs.group_of[i as usize] == NONE && ifs_owner[i as usize] == NONE {
                        ifs_owner[i as usize] = a;
                        m.other_ifs.push(i);
                    }
                }
            }
            if let Some(AmbiguousLink::Candidates { records, .. }) = &amb.flow {
                for &f in records {
                    if flow_owner[f as usize] == NONE {
                        flow_owner[f as usize] = a;
                        m.other_flow.push(f);
                    }
                }
            }
            m.ambiguity = Some(amb);
            more.insert(a, m);
        }

        // The people: one per Azure user, then what is left over (§4).
        let mut key = String::new();
        let mut people: Vec<Person> = Vec::with_capacity(n_az + n_az / 8 + 16);
        for a in 0..n_az as u32 {
            if !in_scope[a as usize] {
                people.push(Person::only(
                    Some(a),
                    None,
                    None,
                    Link::Excluded(Exclusion::Guest),
                ));
                continue;
            }
            let target = az_ifs[a as usize];
            let flow = az_flow[a as usize];
            let mut m = more.remove(&a);
            let (ifs, group) = if target == NONE {
                (None, None)
            } else if (target as usize) < n_ifs {
                (Some(target), None)
            } else {
                let g = (target as usize) - n_ifs;
                (Some(self.side.ifs.groups[g][0]), Some(g))
            };
            if let Some(g) = group {
                let m = m.get_or_insert_with(More::default);
                m.other_ifs
                    .splice(0..0, self.side.ifs.groups[g][1..].iter().copied());
            }
            let link = if m.as_ref().is_some_and(|m| m.ambiguity.is_some()) {
                Link::Ambiguous
            } else if group.is_some() {
                Link::DuplicateDirectoryId
            } else {
                Link::Linked
            };
            let mut person = Person::only(Some(a), ifs, (flow != NONE).then_some(flow), link);
            person.more = m.map(Box::new);
            people.push(person);
        }
        // Comparing the IDs of the linked people is a few lookups each (cache
        // misses at a million users), independent from person to person.
        // A Flow user that §3's first rule found has the ID `≈` the Directory
        // ID of the person's IFS user (the key it was found by): it agrees
        // without looking again. That is most linked people.
        let found_by_directory_id = |a: u32, f: u32| {
            hits.one.get(a as usize) == Some(&(f, 0))
                && flow_rules.first() == Some(&FlowMatchRule::IfsDirectoryId)
        };
        let per_thread = people.len().div_ceil(2).max(MIN_RECORDS_FOR_THREADS);
        let this = &self;
        in_parallel(people.chunks_mut(per_thread).map(|chunk| {
            move || {
                let mut key = String::new();
                for person in chunk {
                    if person.link == Link::Linked {
                        if let (Some(a), Some(i), Some(f)) =
                            (person.azure(), person.ifs(), person.flow())
                        {
                            if found_by_directory_id(a, f) {
                                person.flow_id_agrees = true;
                            } else {
                                this.compare_ids(person, i, f, &mut key);
                            }
                        }
                    }
                }
            }
        }));
        for (g, members) in self.side.ifs.groups.iter().enumerate() {
            if ifs_owner[n_ifs + g] != NONE {
                continue;
            }
            let key = self.side.ifs.dir.form(&s.ifs, members[0]).as_str(&mut key);
            let flow = self.take_leftover_flow(key, &mut flow_owner, TAKEN);
            let mut person = Person::only(None, Some(members[0]), flow, Link::DuplicateDirectoryId);
            person.more = Some(Box::new(More {
                other_ifs: members[1..].to_vec(),
                ..More::default()
            }));
            people.push(person);
        }
        for i in 0..n_ifs as u32 {
            let form = self.side.ifs.dir.form(&s.ifs, i);
            if form.is_empty() {
                let link = if s.ifs[i as usize].active() {
                    Link::DirectoryIdMissing
                } else {
                    Link::Excluded(Exclusion::InactiveWithoutDirectoryId)
                };
                people.push(Person::only(None, Some(i), None, link));
            } else if self.side.ifs.group_of[i as usize] == NONE && ifs_owner[i as usize] == NONE {
                let key = form.as_str(&mut key);
                let flow = self.take_leftover_flow(key, &mut flow_owner, TAKEN);
                people.push(Person::only(None, Some(i), flow, Link::Orphan));
            }
        }
        for f in 0..n_flow as u32 {
            if flow_owner[f as usize] != NONE {
                continue;
            }
            let link = if self.flow.machine[f as usize] {
                Link::Excluded(Exclusion::MachineUser)
            } else {
                Link::Orphan
            };
            people.push(Person::only(None, None, Some(f), link));
        }
        people
    }

    /// Records whether the Flow ID `≈` the IFS Directory ID and, if not,
    /// which other Flow user already holds the expected ID (§5.5).
    fn compare_ids(&self, person: &mut Person, i: u32, f: u32, scratch: &mut String) {
        let flow = &self.s.flow;
        let expected = self.side.ifs.dir.form(&self.s.ifs, i).as_str(scratch);
        person.flow_id_agrees = self.flow.id.form(flow, f).is(expected);
        if person.flow_id_agrees {
            return;
        }
        let holder = self
            .flow
            .id
            .get(flow, expected)
            .filter(|&h| h != f)
            .min_by(|&x, &y| flow_order(&flow[x as usize], &flow[y as usize]));
        if let Some(h) = holder {
            person
                .more
                .get_or_insert_with(Box::default)
                .expected_id_holder = Some(h);
        }
    }
}

impl Person {
    fn only(azure: Option<u32>, ifs: Option<u32>, flow: Option<u32>, link: Link) -> Self {
        Person {
            azure: azure.unwrap_or(NONE),
            ifs: ifs.unwrap_or(NONE),
            flow: flow.unwrap_or(NONE),
            link,
            flow_id_agrees: false,
            more: None,
        }
    }

    /// The Azure user.
    pub fn azure(&self) -> Option<u32> {
        (self.azure != NONE).then_some(self.azure)
    }

    /// The IFS user (for a duplicate group: the member with the smallest identity).
    pub fn ifs(&self) -> Option<u32> {
        (self.ifs != NONE).then_some(self.ifs)
    }

    /// The Flow user.
    pub fn flow(&self) -> Option<u32> {
        (self.flow != NONE).then_some(self.flow)
    }

    /// Every IFS user of this person.
    pub fn all_ifs(&self) -> impl Iterator<Item = u32> + '_ {
        self.ifs()
            .into_iter()
            .chain(self.more.iter().flat_map(|m| m.other_ifs.iter().copied()))
    }

    /// Every Flow user of this person.
    pub fn all_flow(&self) -> impl Iterator<Item = u32> + '_ {
        self.flow()
            .into_iter()
            .chain(self.more.iter().flat_map(|m| m.other_flow.iter().copied()))
    }

    /// The ambiguity, for [`Link::Ambiguous`] people.
    pub fn ambiguity(&self) -> Option<&Ambiguity> {
        self.more.as_ref().and_then(|m| m.ambiguity.as_ref())
    }

    /// The other Flow user that already holds this person's expected ID.
    pub fn expected_id_holder(&self) -> Option<u32> {
        self.more.as_ref().and_then(|m| m.expected_id_holder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_takes_24_bytes() {
        assert_eq!(std::mem::size_of::<Person>(), 24);
    }

    #[test]
    fn absent_records_read_as_none() {
        let p = Person::only(Some(0), None, Some(7), Link::Linked);
        assert_eq!((p.azure(), p.ifs(), p.flow()), (Some(0), None, Some(7)));
        assert_eq!(p.all_ifs().count(), 0);
        assert_eq!(p.all_flow().collect::<Vec<_>>(), vec![7]);
    }
}
