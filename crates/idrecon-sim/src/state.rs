//! The simulator's shared state: the three directories, issued tokens,
//! delta history, fault counters, received mail and write counters.
//!
//! Every lock is held only for short, synchronous sections (never across an
//! `.await`), and a poisoned lock is recovered rather than propagated: a
//! panicking test must not take the simulator down with it.

use super::config::SimSettings;
use super::faults::{ActiveFaults, FaultDecision, FaultKind, FaultPlan, FaultTarget};
use super::sort::sort_by_text_key;
use compact_str::CompactString;
use idrecon_core::model::{AadUser, FlowUser, IfsUser, NormalizedId};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// Recover from poisoning: the data is still consistent (all updates are
/// done in place before any code that could panic).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
pub(crate) fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}
pub(crate) fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// Compares object IDs ASCII case-insensitively without allocating.
pub(crate) fn cmp_id(a: &str, b: &str) -> Ordering {
    // A plain loop that stops at the first difference: sorting a million
    // users compares ~20 million pairs, most of which differ in byte one.
    let (a, b) = (a.as_bytes(), b.as_bytes());
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (x.to_ascii_lowercase(), y.to_ascii_lowercase());
        if x != y {
            return x.cmp(&y);
        }
    }
    a.len().cmp(&b.len())
}

/// Sorts Azure users by object ID as [`cmp_id`] compares them (stable).
fn sort_by_id(users: &mut [AadUser]) {
    sort_by_text_key(users, |u| u.id(), |b| b.to_ascii_lowercase(), cmp_id);
}

/// Why a user left the delta stream (Graph's `@removed.reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemovalReason {
    /// Soft-deleted, restorable.
    Changed,
    /// Gone for good.
    Deleted,
}

impl RemovalReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RemovalReason::Changed => "changed",
            RemovalReason::Deleted => "deleted",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Tombstone {
    pub id: String,
    pub reason: RemovalReason,
    pub version: u64,
}

/// A hash of every field of an Azure user (change detection for delta).
fn fingerprint(u: &AadUser) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    u.id().hash(&mut h);
    u.user_principal_name().hash(&mut h);
    u.mail().hash(&mut h);
    u.display_name().hash(&mut h);
    u.account_enabled().hash(&mut h);
    u.employee_id().hash(&mut h);
    u.on_premises_sam_account_name().hash(&mut h);
    u.user_type().hash(&mut h);
    h.finish()
}

/// Azure users (sorted by object ID) with the version at which each last
/// changed, so delta queries can answer "what changed since version v".
#[derive(Debug, Default)]
pub(crate) struct AzureStore {
    pub users: Vec<AadUser>,
    pub versions: Vec<u64>,
    pub tombstones: Vec<Tombstone>,
    /// Soft-deleted users, restorable with `restore_azure`.
    pub recycle_bin: Vec<AadUser>,
    pub version: u64,
}

impl AzureStore {
    pub fn new(mut users: Vec<AadUser>) -> Self {
        sort_by_id(&mut users);
        let versions = vec![0; users.len()];
        AzureStore {
            users,
            versions,
            tombstones: Vec::new(),
            recycle_bin: Vec::new(),
            version: 0,
        }
    }

    pub fn find_by_id(&self, id: &str) -> Option<usize> {
        self.users.binary_search_by(|u| cmp_id(u.id(), id)).ok()
    }

    /// Applies `f` and records every difference as a change at a new version.
    ///
    /// Only IDs and 64-bit fingerprints of the old users are kept while `f`
    /// runs (not a copy of every user), so this stays cheap on large tenants.
    pub fn update(&mut self, f: impl FnOnce(&mut Vec<AadUser>)) {
        let old: Vec<(CompactString, u64)> = self
            .users
            .iter()
            .map(|u| (u.id().into(), fingerprint(u)))
            .collect();
        let old_versions = std::mem::take(&mut self.versions);
        f(&mut self.users);
        sort_by_id(&mut self.users);
        self.version += 1;
        let v = self.version;
        let mut versions = Vec::with_capacity(self.users.len());
        // Merge-join old and new (both sorted by id).
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < self.users.len() {
            let ord = match (old.get(i), self.users.get(j)) {
                (Some(o), Some(n)) => cmp_id(&o.0, n.id()),
                (Some(_), None) => Ordering::Less,
                (None, _) => Ordering::Greater,
            };
            match ord {
                Ordering::Less => {
                    self.tombstones.push(Tombstone {
                        id: old[i].0.to_string(),
                        reason: RemovalReason::Deleted,
                        version: v,
                    });
                    i += 1;
                }
                Ordering::Greater => {
                    versions.push(v);
                    j += 1;
                }
                Ordering::Equal => {
                    versions.push(if old[i].1 == fingerprint(&self.users[j]) {
                        old_versions.get(i).copied().unwrap_or(0)
                    } else {
                        v
                    });
                    i += 1;
                    j += 1;
                }
            }
        }
        self.versions = versions;
    }

    /// Soft-deletes a user (`@removed.reason = changed`). False if unknown.
    pub fn soft_delete(&mut self, id: &str) -> bool {
        let Some(idx) = self.find_by_id(id) else {
            return false;
        };
        self.version += 1;
        let user = self.users.remove(idx);
        self.versions.remove(idx);
        self.tombstones.push(Tombstone {
            id: user.id().to_string(),
            reason: RemovalReason::Changed,
            version: self.version,
        });
        self.recycle_bin.push(user);
        true
    }

    /// Restores a soft-deleted user (it reappears in delta). False if unknown.
    pub fn restore(&mut self, id: &str) -> bool {
        let Some(pos) = self
            .recycle_bin
            .iter()
            .position(|u| cmp_id(u.id(), id).is_eq())
        else {
            return false;
        };
        let user = self.recycle_bin.remove(pos);
        self.version += 1;
        let idx = match self.users.binary_search_by(|u| cmp_id(u.id(), user.id())) {
            Ok(i) | Err(i) => i,
        };
        self.users.insert(idx, user);
        self.versions.insert(idx, self.version);
        true
    }
}

/// IFS users sorted by `Identity` (the `$orderby` every client uses).
#[derive(Debug, Default)]
pub(crate) struct IfsStore {
    pub users: Vec<IfsUser>,
}

impl IfsStore {
    pub fn new(mut users: Vec<IfsUser>) -> Self {
        sort_by_text_key(&mut users, |u| u.identity(), |b| b, str::cmp);
        IfsStore { users }
    }
}

/// One successful write to Flow, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowWrite {
    Rename {
        user_id: String,
        new_user_id: String,
    },
    Deactivate {
        user_id: String,
    },
}

/// Per-user write counters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WriteCounts {
    pub renames: u64,
    pub deactivations: u64,
}

/// Flow users in insertion order, with a lazily built lookup index and the
/// write counters tests inspect.
#[derive(Debug, Default)]
pub(crate) struct FlowStore {
    pub users: Vec<FlowUser>,
    /// Comparison key → positions; `None` until the first write needs it.
    index: Option<HashMap<String, Vec<usize>>>,
    index_case_insensitive: bool,
    /// Counters by the user's current (exact) ID.
    pub counts: HashMap<String, WriteCounts>,
    /// Former ID → the ID it was renamed to.
    pub renamed_to: HashMap<String, String>,
    pub writes: Vec<FlowWrite>,
}

pub(crate) enum FlowWriteOutcome {
    Done,
    NotFound,
    Taken,
}

impl FlowStore {
    pub fn new(users: Vec<FlowUser>) -> Self {
        FlowStore {
            users,
            ..FlowStore::default()
        }
    }

    pub fn replace(&mut self, f: impl FnOnce(&mut Vec<FlowUser>)) {
        f(&mut self.users);
        self.index = None;
    }

    fn key(id: &str, case_insensitive: bool) -> String {
        NormalizedId::with_mode(id, !case_insensitive)
            .as_str()
            .to_string()
    }

    fn index(&mut self, case_insensitive: bool) -> &HashMap<String, Vec<usize>> {
        if self.index.is_none() || self.index_case_insensitive != case_insensitive {
            let mut map: HashMap<String, Vec<usize>> = HashMap::with_capacity(self.users.len());
            for (i, u) in self.users.iter().enumerate() {
                map.entry(Self::key(u.user_id(), case_insensitive))
                    .or_default()
                    .push(i);
            }
            self.index = Some(map);
            self.index_case_insensitive = case_insensitive;
        }
        self.index.get_or_insert_with(HashMap::new)
    }

    /// The user a write names: the exact ID first, else (case-insensitive
    /// Flow) the single user equal under comparison.
    fn locate(&mut self, id: &str, ci: bool) -> Option<usize> {
        let key = Self::key(id, ci);
        let positions = self.index(ci).get(&key).cloned().unwrap_or_default();
        positions
            .iter()
            .copied()
            .find(|&i| self.users[i].user_id() == id)
            .or_else(|| (positions.len() == 1).then(|| positions[0]))
    }

    pub fn rename(&mut self, id: &str, new_id: &str, ci: bool) -> FlowWriteOutcome {
        let Some(pos) = self.locate(id, ci) else {
            return FlowWriteOutcome::NotFound;
        };
        let new_key = Self::key(new_id, ci);
        let taken = self
            .index(ci)
            .get(&new_key)
            .is_some_and(|ps| ps.iter().any(|&p| p != pos));
        if taken {
            return FlowWriteOutcome::Taken;
        }
        let old_id = self.users[pos].user_id().to_string();
        self.users[pos].edit(|fields| fields.user_id = new_id.into());
        let old_key = Self::key(&old_id, ci);
        if let Some(index) = self.index.as_mut() {
            if let Some(ps) = index.get_mut(&old_key) {
                ps.retain(|&p| p != pos);
                if ps.is_empty() {
                    index.remove(&old_key);
                }
            }
            index.entry(new_key).or_default().push(pos);
        }
        let mut counts = self.counts.remove(&old_id).unwrap_or_default();
        counts.renames += 1;
        self.counts.insert(new_id.to_string(), counts);
        if old_id != new_id {
            self.renamed_to.insert(old_id.clone(), new_id.to_string());
        }
        self.writes.push(FlowWrite::Rename {
            user_id: old_id,
            new_user_id: new_id.to_string(),
        });
        FlowWriteOutcome::Done
    }

    /// Whether a user has this ID (compared the way Flow compares).
    pub fn has_user(&mut self, id: &str, ci: bool) -> bool {
        self.locate(id, ci).is_some()
    }

    pub fn deactivate(&mut self, id: &str, ci: bool) -> FlowWriteOutcome {
        let Some(pos) = self.locate(id, ci) else {
            return FlowWriteOutcome::NotFound;
        };
        self.users[pos].edit(|fields| fields.active = false);
        let user_id = self.users[pos].user_id().to_string();
        self.counts
            .entry(user_id.clone())
            .or_default()
            .deactivations += 1;
        self.writes.push(FlowWrite::Deactivate { user_id });
        FlowWriteOutcome::Done
    }

    /// Counters of the user now or formerly known as `id`.
    pub fn counts_for(&self, id: &str) -> WriteCounts {
        let mut current = id;
        // Follow renames (bounded: a rename cycle must not loop for ever).
        for _ in 0..=self.renamed_to.len() {
            if self.users.iter().any(|u| u.user_id() == current) {
                break;
            }
            match self.renamed_to.get(current) {
                Some(next) => current = next,
                None => break,
            }
        }
        self.counts.get(current).copied().unwrap_or_default()
    }
}

/// Access tokens issued by one authority, with expiry.
#[derive(Debug, Default)]
pub(crate) struct TokenStore {
    tokens: HashMap<String, Instant>,
    /// Every token ever issued, in order (tests check none leaks into logs).
    issued: Vec<String>,
}

/// Why a presented token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    Missing,
    Unknown,
    Expired,
}

impl TokenStore {
    pub fn issue(&mut self, lifetime: Duration) -> String {
        let now = Instant::now();
        self.tokens.retain(|_, exp| *exp > now);
        let token = random_token();
        self.tokens.insert(token.clone(), now + lifetime);
        self.issued.push(token.clone());
        token
    }

    /// Every token issued so far, expired or not.
    pub fn issued(&self) -> &[String] {
        &self.issued
    }

    pub fn check(&self, token: Option<&str>) -> Result<(), TokenProblem> {
        let token = token.ok_or(TokenProblem::Missing)?;
        match self.tokens.get(token) {
            None => Err(TokenProblem::Unknown),
            Some(exp) if *exp <= Instant::now() => Err(TokenProblem::Expired),
            Some(_) => Ok(()),
        }
    }

    /// Makes a token expired now (the `expire-token` fault).
    pub fn expire(&mut self, token: &str) {
        if let Some(exp) = self.tokens.get_mut(token) {
            *exp = Instant::now();
        }
    }
}

/// 32 random bytes, base64url: an opaque bearer token.
pub(crate) fn random_token() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A certificate registered for the Azure app (client assertion checks).
#[derive(Clone)]
pub(crate) struct RegisteredCert {
    /// base64url SHA-256 of the DER certificate (`x5t#S256`).
    pub thumbprint_s256: String,
    /// base64url SHA-1 of the DER certificate (`x5t`).
    pub thumbprint_sha1: String,
    pub key: jsonwebtoken::DecodingKey,
}

/// A `sendMail` request as received.
#[derive(Clone, Debug)]
pub struct SentMail {
    /// The sender from the URL path (ID or UPN), percent-decoded.
    pub sender: String,
    /// The JSON body exactly as posted.
    pub body: serde_json::Value,
}

/// Everything the simulator knows, shared by the handlers and `SimHandle`.
pub(crate) struct SimState {
    pub base_url: String,
    pub settings: RwLock<SimSettings>,
    pub azure: RwLock<AzureStore>,
    pub ifs: RwLock<IfsStore>,
    pub flow: RwLock<FlowStore>,
    /// Group ID (lower case) → member object IDs.
    pub groups: RwLock<HashMap<String, Vec<String>>>,
    pub azure_tokens: Mutex<TokenStore>,
    pub ifs_tokens: Mutex<TokenStore>,
    pub certificates: RwLock<Vec<RegisteredCert>>,
    pub used_jtis: Mutex<HashSet<String>>,
    /// Delta tokens carry this epoch; bumping it expires them all.
    pub delta_epoch: Mutex<u64>,
    /// How far the simulated clock is ahead of the real one
    /// (`SimHandle::advance_clock`): delta tokens age by it.
    pub clock_offset: Mutex<Duration>,
    faults: Mutex<ActiveFaults>,
    /// Requests per fault target (numbering for non-listing targets).
    target_requests: Mutex<[u32; 7]>,
    pub requests_by_path: Mutex<HashMap<String, u64>>,
    pub mail: Mutex<Vec<SentMail>>,
}

impl SimState {
    pub fn new(
        base_url: String,
        tenant: super::Tenant,
        faults: FaultPlan,
        settings: SimSettings,
    ) -> Self {
        let groups = tenant
            .groups
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        // Both sort a large tenant (a second or more at a million people):
        // side by side.
        let (azure, ifs) = std::thread::scope(|scope| {
            let ifs = scope.spawn(|| IfsStore::new(tenant.ifs));
            let azure = AzureStore::new(tenant.azure);
            match ifs.join() {
                Ok(ifs) => (azure, ifs),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        });
        SimState {
            base_url,
            settings: RwLock::new(settings),
            azure: RwLock::new(azure),
            ifs: RwLock::new(ifs),
            flow: RwLock::new(FlowStore::new(tenant.flow)),
            groups: RwLock::new(groups),
            azure_tokens: Mutex::new(TokenStore::default()),
            ifs_tokens: Mutex::new(TokenStore::default()),
            certificates: RwLock::new(Vec::new()),
            used_jtis: Mutex::new(HashSet::new()),
            delta_epoch: Mutex::new(1),
            clock_offset: Mutex::new(Duration::ZERO),
            faults: Mutex::new(ActiveFaults::new(faults)),
            target_requests: Mutex::new([0; 7]),
            requests_by_path: Mutex::new(HashMap::new()),
            mail: Mutex::new(Vec::new()),
        }
    }

    pub fn settings(&self) -> SimSettings {
        read(&self.settings).clone()
    }

    /// Simulated time: the real clock plus every `advance_clock`, in Unix seconds.
    pub fn now_secs(&self) -> u64 {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        (real + *lock(&self.clock_offset)).as_secs()
    }

    pub fn set_faults(&self, plan: FaultPlan) {
        *lock(&self.faults) = ActiveFaults::new(plan);
        *lock(&self.target_requests) = [0; 7];
    }

    /// Decides the faults for a listing page.
    pub fn fault_for_page(
        &self,
        target: FaultTarget,
        page: u32,
        applicable: impl Fn(&FaultKind) -> bool,
    ) -> FaultDecision {
        lock(&self.faults).decide(target, page, applicable)
    }

    /// Decides the faults for a non-listing request (numbered per target).
    pub fn fault_for_request(&self, target: FaultTarget) -> FaultDecision {
        let n = {
            let mut counters = lock(&self.target_requests);
            let slot = &mut counters[target.index()];
            *slot = slot.saturating_add(1);
            *slot
        };
        lock(&self.faults).decide(target, n, |k| {
            !matches!(k, FaultKind::Empty | FaultKind::ExpireDelta)
        })
    }

    pub fn count_request(&self, path: &str) {
        *lock(&self.requests_by_path)
            .entry(path.to_string())
            .or_insert(0) += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idrecon_core::model::{AadUserFields, FlowUserFields};

    fn aad(id: &str, upn: &str) -> AadUser {
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

    #[test]
    fn azure_update_records_changes_and_removals() {
        let mut store = AzureStore::new(vec![aad("b", "b@x"), aad("a", "a@x"), aad("c", "c@x")]);
        assert_eq!(store.users[0].id(), "a");
        store.update(|users| {
            users.retain(|u| u.id() != "b");
            users[0].edit(|fields| fields.user_principal_name = "a2@x".into());
            users.push(aad("d", "d@x"));
        });
        let ids: Vec<_> = store.users.iter().map(|u| u.id()).collect();
        assert_eq!(ids, ["a", "c", "d"]);
        assert_eq!(store.versions, vec![1, 0, 1]);
        assert_eq!(store.tombstones.len(), 1);
        assert_eq!(store.tombstones[0].id, "b");
        assert_eq!(store.tombstones[0].reason, RemovalReason::Deleted);
        assert!(store.soft_delete("C"));
        assert_eq!(store.tombstones[1].reason, RemovalReason::Changed);
        assert!(store.restore("c"));
        assert_eq!(store.find_by_id("c"), Some(1));
        assert_eq!(store.versions[1], 3);
    }

    fn flow(id: &str) -> FlowUser {
        FlowUser::from(FlowUserFields {
            user_id: id.into(),
            name: None,
            email: None,
            active: true,
            user_type: "Full".into(),
            sync_source: None,
        })
    }

    #[test]
    fn flow_rename_checks_targets_and_counts() {
        let mut store = FlowStore::new(vec![flow("jdoe"), flow("Taken@x.com"), flow("asmith")]);
        assert!(matches!(
            store.rename("jdoe", "taken@X.com", true),
            FlowWriteOutcome::Taken
        ));
        // case-sensitive Flow: not taken
        assert!(matches!(
            store.rename("jdoe", "taken@X.com", false),
            FlowWriteOutcome::Done
        ));
        assert!(matches!(
            store.rename("nobody", "x", true),
            FlowWriteOutcome::NotFound
        ));
        // renaming to a case variant of itself is allowed
        assert!(matches!(
            store.rename("asmith", "ASmith", true),
            FlowWriteOutcome::Done
        ));
        assert_eq!(store.counts_for("jdoe").renames, 1);
        assert_eq!(store.counts_for("taken@X.com").renames, 1);
        assert_eq!(store.counts_for("asmith").renames, 1);
        assert!(matches!(
            store.deactivate("asmith", true),
            FlowWriteOutcome::Done
        ));
        assert_eq!(store.counts_for("ASmith").deactivations, 1);
        assert!(!store.users[2].active());
        assert_eq!(store.writes.len(), 3);
    }
}
