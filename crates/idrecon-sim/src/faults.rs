//! Injected faults: what the simulator does wrong, where and how often.
//!
//! # Spec syntax (`idrecon sim --faults SPEC`)
//!
//! A comma-separated list of rules, each
//!
//! ```text
//! TARGET:KIND[=ARG][@N][xCOUNT]
//! ```
//!
//! **TARGET** — which requests the rule watches:
//!
//! | target | requests | `@N` means |
//! |---|---|---|
//! | `graph` | Graph user listings (`/users`, `/users/delta`, group members) | page N of a listing |
//! | `ifs` | IFS OData `Users` listing | page N of a listing |
//! | `flow` | Flow `GET /users` | page N of a listing |
//! | `flow-write` | Flow `POST /users/rename` and `/users/deactivate` | the N-th write request |
//! | `login` | Azure login token endpoint | the N-th token request |
//! | `iam` | IFS IAM token endpoint | the N-th token request |
//! | `mail` | Graph `sendMail` | the N-th mail request |
//!
//! Pages are numbered from 1 in every listing (the page number travels in the
//! `$skiptoken`, `$skip`/`$top` or `cursor`), so `graph:500@2` hits the second
//! page of every Graph listing until its count is used up.
//!
//! **KIND**:
//!
//! | kind | effect |
//! |---|---|
//! | `NNN` (400–599), e.g. `429`, `500`, `503` | that status with the service's error body; `=SECS` adds `Retry-After: SECS`, `=date+SECS` adds `Retry-After` as an HTTP-date SECS seconds ahead; `429` without ARG sends `Retry-After: 1` |
//! | `slow=MS` | answers normally after MS milliseconds |
//! | `drop` | closes the connection without a complete response |
//! | `drop-after` | `flow-write` only: performs the write, then drops the connection (the client cannot know it succeeded) |
//! | `badjson` | `200` whose body is not JSON |
//! | `truncate` | `200` whose JSON body is cut off halfway |
//! | `expire-token` | the presented access token expires now: `401` in the service's shape (once per firing) |
//! | `expire-delta` | `graph` only: a delta-token request answers `410 syncStateNotFound` |
//! | `expire-page` | `graph` only: a page after the first answers `400 Directory_ExpiredPageToken` (its `$skiptoken` expired) |
//! | `empty` | listing only: a complete-looking listing with no users |
//!
//! **`@N`** restricts the rule to page (or request) N; without it any page
//! matches. **`xCOUNT`** is how many times the rule fires (default 1; `x*`
//! for ever). A `500@1x2` therefore makes the first page fail twice in a row
//! and then succeed: a burst.
//!
//! Example: `graph:429@2x3,ifs:500@1x2,flow:slow=200@3,graph:drop@4,ifs:badjson@2,graph:expire-token@3,flow:empty`
//!
//! When several rules match one request, every matching `slow` rule adds its
//! delay and the first matching other rule decides the outcome.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Which requests a fault rule watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultTarget {
    /// Graph user listings: `/users`, `/users/delta`, group members.
    Graph,
    /// IFS OData `Users` listing.
    Ifs,
    /// Flow `GET /users`.
    Flow,
    /// Flow rename / deactivate.
    FlowWrite,
    /// Azure login token endpoint.
    Login,
    /// IFS IAM token endpoint.
    Iam,
    /// Graph `sendMail`.
    Mail,
}

impl FaultTarget {
    const ALL: [FaultTarget; 7] = [
        FaultTarget::Graph,
        FaultTarget::Ifs,
        FaultTarget::Flow,
        FaultTarget::FlowWrite,
        FaultTarget::Login,
        FaultTarget::Iam,
        FaultTarget::Mail,
    ];

    /// The name used in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultTarget::Graph => "graph",
            FaultTarget::Ifs => "ifs",
            FaultTarget::Flow => "flow",
            FaultTarget::FlowWrite => "flow-write",
            FaultTarget::Login => "login",
            FaultTarget::Iam => "iam",
            FaultTarget::Mail => "mail",
        }
    }

    /// Listings count pages; the other targets count requests.
    pub fn is_listing(self) -> bool {
        matches!(
            self,
            FaultTarget::Graph | FaultTarget::Ifs | FaultTarget::Flow
        )
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// How a `Retry-After` header is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: 5`
    Seconds(u64),
    /// `Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`, this many seconds ahead.
    HttpDate(u64),
}

/// What a fault does to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// An error status with the service's error body, optionally with `Retry-After`.
    Status {
        status: u16,
        retry_after: Option<RetryAfter>,
    },
    /// Answer normally after a delay.
    Slow(Duration),
    /// Close the connection without a complete response.
    Drop,
    /// Perform the write, then drop the connection (`flow-write`).
    DropAfter,
    /// `200` with a body that is not JSON.
    BadJson,
    /// `200` with the JSON body cut off halfway.
    Truncate,
    /// The presented access token expires: `401`.
    ExpireToken,
    /// A Graph delta-token request answers `410 syncStateNotFound`.
    ExpireDelta,
    /// A Graph page after the first answers `400 Directory_ExpiredPageToken`.
    ExpirePage,
    /// A complete-looking listing without users.
    Empty,
}

/// One rule of a [`FaultPlan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    pub target: FaultTarget,
    pub kind: FaultKind,
    /// Page (listings) or request number (others), from 1; `None` = any.
    pub page: Option<u32>,
    /// How many times the rule fires; `None` = for ever.
    pub count: Option<u32>,
}

/// The faults a simulator injects. `Default` injects none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub rules: Vec<FaultRule>,
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds a rule (builder style, for tests).
    pub fn with(mut self, rule: FaultRule) -> Self {
        self.rules.push(rule);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// A `--faults` spec that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault rule '{item}': {reason} (expected TARGET:KIND[=ARG][@N][xCOUNT], e.g. graph:429@2x3)")]
pub struct FaultSpecError {
    pub item: String,
    pub reason: String,
}

impl FromStr for FaultPlan {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut rules = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item.eq_ignore_ascii_case("none") {
                continue;
            }
            rules.push(parse_rule(item).map_err(|reason| FaultSpecError {
                item: item.to_string(),
                reason,
            })?);
        }
        Ok(FaultPlan { rules })
    }
}

fn parse_rule(item: &str) -> Result<FaultRule, String> {
    let (target, rest) = item
        .split_once(':')
        .ok_or_else(|| "missing ':' between target and kind".to_string())?;
    let target_name = target.trim().to_ascii_lowercase();
    let target = FaultTarget::ALL
        .into_iter()
        .find(|t| t.as_str() == target_name)
        .ok_or_else(|| {
            format!(
                "unknown target '{target_name}' (one of {})",
                FaultTarget::ALL.map(FaultTarget::as_str).join(", ")
            )
        })?;
    let mut rest = rest.trim();

    // xCOUNT: the last 'x' followed only by digits or '*'.
    let mut count = Some(1);
    if let Some(pos) = rest.rfind('x') {
        let tail = &rest[pos + 1..];
        if tail == "*" {
            count = None;
            rest = &rest[..pos];
        } else if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
            let n: u32 = tail
                .parse()
                .map_err(|_| format!("count '{tail}' is too large"))?;
            if n == 0 {
                return Err("count must be at least 1 (use x* for ever)".into());
            }
            count = Some(n);
            rest = &rest[..pos];
        }
    }

    // @N
    let mut page = None;
    if let Some((head, n)) = rest.rsplit_once('@') {
        let n: u32 = n
            .parse()
            .map_err(|_| format!("page '{n}' is not a number"))?;
        if n == 0 {
            return Err("pages are numbered from 1".into());
        }
        page = Some(n);
        rest = head;
    }

    let (name, arg) = match rest.split_once('=') {
        Some((n, a)) => (n.trim(), Some(a.trim())),
        None => (rest.trim(), None),
    };
    let name = name.to_ascii_lowercase();
    let kind = match name.as_str() {
        "slow" => {
            let ms = arg.ok_or("slow needs a delay: slow=MS")?;
            let ms: u64 = ms
                .parse()
                .map_err(|_| format!("delay '{ms}' is not a number of milliseconds"))?;
            FaultKind::Slow(Duration::from_millis(ms))
        }
        "drop" => no_arg(arg, FaultKind::Drop)?,
        "drop-after" => {
            if target != FaultTarget::FlowWrite {
                return Err("drop-after applies to flow-write only".into());
            }
            no_arg(arg, FaultKind::DropAfter)?
        }
        "badjson" => no_arg(arg, FaultKind::BadJson)?,
        "truncate" => no_arg(arg, FaultKind::Truncate)?,
        "expire-token" => no_arg(arg, FaultKind::ExpireToken)?,
        "expire-delta" => {
            if target != FaultTarget::Graph {
                return Err("expire-delta applies to graph only".into());
            }
            no_arg(arg, FaultKind::ExpireDelta)?
        }
        "expire-page" => {
            if target != FaultTarget::Graph {
                return Err("expire-page applies to graph only".into());
            }
            no_arg(arg, FaultKind::ExpirePage)?
        }
        "empty" => {
            if !target.is_listing() {
                return Err("empty applies to listings only (graph, ifs, flow)".into());
            }
            no_arg(arg, FaultKind::Empty)?
        }
        digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            let status: u16 = digits
                .parse()
                .map_err(|_| format!("status '{digits}' is not a number"))?;
            if !(400..=599).contains(&status) {
                return Err(format!("status {status} is not an error status (400-599)"));
            }
            let retry_after = match arg {
                None if status == 429 => Some(RetryAfter::Seconds(1)),
                None => None,
                Some(a) => Some(parse_retry_after(a)?),
            };
            FaultKind::Status {
                status,
                retry_after,
            }
        }
        other => {
            return Err(format!(
                "unknown kind '{other}' (a status like 429, slow=MS, drop, drop-after, badjson, truncate, expire-token, expire-delta, expire-page, empty)"
            ))
        }
    };
    Ok(FaultRule {
        target,
        kind,
        page,
        count,
    })
}

fn no_arg(arg: Option<&str>, kind: FaultKind) -> Result<FaultKind, String> {
    match arg {
        None => Ok(kind),
        Some(a) => Err(format!("this kind takes no argument (got '={a}')")),
    }
}

fn parse_retry_after(arg: &str) -> Result<RetryAfter, String> {
    if let Some(secs) = arg.strip_prefix("date+") {
        let secs: u64 = secs
            .parse()
            .map_err(|_| format!("Retry-After date offset '{secs}' is not a number"))?;
        return Ok(RetryAfter::HttpDate(secs));
    }
    arg.parse()
        .map(RetryAfter::Seconds)
        .map_err(|_| format!("Retry-After '{arg}' is neither SECS nor date+SECS"))
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.target.as_str())?;
        match self.kind {
            FaultKind::Status {
                status,
                retry_after,
            } => {
                write!(f, "{status}")?;
                match retry_after {
                    Some(RetryAfter::Seconds(s)) => write!(f, "={s}")?,
                    Some(RetryAfter::HttpDate(s)) => write!(f, "=date+{s}")?,
                    None => {}
                }
            }
            FaultKind::Slow(d) => write!(f, "slow={}", d.as_millis())?,
            FaultKind::Drop => f.write_str("drop")?,
            FaultKind::DropAfter => f.write_str("drop-after")?,
            FaultKind::BadJson => f.write_str("badjson")?,
            FaultKind::Truncate => f.write_str("truncate")?,
            FaultKind::ExpireToken => f.write_str("expire-token")?,
            FaultKind::ExpireDelta => f.write_str("expire-delta")?,
            FaultKind::ExpirePage => f.write_str("expire-page")?,
            FaultKind::Empty => f.write_str("empty")?,
        }
        if let Some(p) = self.page {
            write!(f, "@{p}")?;
        }
        match self.count {
            Some(1) => Ok(()),
            Some(n) => write!(f, "x{n}"),
            None => f.write_str("x*"),
        }
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rules.is_empty() {
            return f.write_str("none");
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{rule}")?;
        }
        Ok(())
    }
}

/// What the fault machinery decided for one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultDecision {
    /// Total delay of the matching `slow` rules.
    pub delay: Duration,
    /// The outcome-changing fault, if any.
    pub fault: Option<FaultKind>,
}

/// A [`FaultPlan`] with its remaining counts, as the running server uses it.
#[derive(Debug, Default)]
pub(crate) struct ActiveFaults {
    rules: Vec<(FaultRule, Option<u32>)>,
}

impl ActiveFaults {
    pub(crate) fn new(plan: FaultPlan) -> Self {
        ActiveFaults {
            rules: plan
                .rules
                .into_iter()
                .map(|r| {
                    let remaining = r.count;
                    (r, remaining)
                })
                .collect(),
        }
    }

    /// Decides (and uses up) the faults for one request to `target` at
    /// page/request `n`. `kinds_applicable` filters kinds this request
    /// cannot suffer (e.g. `expire-delta` on a non-delta request), so they
    /// are not used up in vain.
    pub(crate) fn decide(
        &mut self,
        target: FaultTarget,
        n: u32,
        applicable: impl Fn(&FaultKind) -> bool,
    ) -> FaultDecision {
        let mut decision = FaultDecision::default();
        for (rule, remaining) in &mut self.rules {
            if rule.target != target
                || rule.page.is_some_and(|p| p != n)
                || *remaining == Some(0)
                || !applicable(&rule.kind)
            {
                continue;
            }
            match rule.kind {
                FaultKind::Slow(d) => decision.delay += d,
                other => {
                    if decision.fault.is_some() {
                        continue;
                    }
                    decision.fault = Some(other);
                }
            }
            if let Some(r) = remaining {
                *r -= 1;
            }
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let plan: FaultPlan = "graph:429@2x3,ifs:500@1x2,flow:slow=200@3,graph:drop@4,ifs:badjson@2,graph:expire-token@3,flow:empty"
            .parse()
            .unwrap();
        assert_eq!(plan.rules.len(), 7);
        assert_eq!(
            plan.rules[0],
            FaultRule {
                target: FaultTarget::Graph,
                kind: FaultKind::Status {
                    status: 429,
                    retry_after: Some(RetryAfter::Seconds(1))
                },
                page: Some(2),
                count: Some(3)
            }
        );
        assert_eq!(
            plan.rules[2].kind,
            FaultKind::Slow(Duration::from_millis(200))
        );
        assert_eq!(plan.rules[5].kind, FaultKind::ExpireToken);
        assert_eq!(plan.rules[5].page, Some(3));
        assert_eq!(plan.rules[6].page, None);
        assert_eq!(plan.rules[6].count, Some(1));
        // Display round-trips.
        let again: FaultPlan = plan.to_string().parse().unwrap();
        assert_eq!(again, plan);
    }

    #[test]
    fn retry_after_forms_and_unlimited_count() {
        let plan: FaultPlan = "graph:429=7@1,ifs:503=date+30x*,flow-write:drop-after@2"
            .parse()
            .unwrap();
        assert_eq!(
            plan.rules[0].kind,
            FaultKind::Status {
                status: 429,
                retry_after: Some(RetryAfter::Seconds(7))
            }
        );
        assert_eq!(
            plan.rules[1].kind,
            FaultKind::Status {
                status: 503,
                retry_after: Some(RetryAfter::HttpDate(30))
            }
        );
        assert_eq!(plan.rules[1].count, None);
        assert_eq!(plan.rules[2].kind, FaultKind::DropAfter);
    }

    #[test]
    fn errors_name_the_bad_item() {
        for (spec, needle) in [
            ("graph", "missing ':'"),
            ("grph:500", "unknown target"),
            ("graph:200", "not an error status"),
            ("graph:slow", "slow needs a delay"),
            ("graph:frob", "unknown kind"),
            ("graph:500@0", "numbered from 1"),
            ("graph:500@a", "not a number"),
            ("graph:500x0", "at least 1"),
            ("ifs:expire-delta", "graph only"),
            ("flow:expire-page", "graph only"),
            ("login:empty", "listings only"),
            ("graph:drop=3", "no argument"),
        ] {
            let err = spec.parse::<FaultPlan>().unwrap_err();
            assert!(
                err.to_string().contains(needle),
                "{spec}: {err} should contain {needle}"
            );
            assert!(err.to_string().contains(spec.split(',').next().unwrap()));
        }
        assert!("".parse::<FaultPlan>().unwrap().is_empty());
        assert!("none".parse::<FaultPlan>().unwrap().is_empty());
    }

    #[test]
    fn counts_are_used_up_per_matching_request() {
        let plan: FaultPlan = "graph:500@2x2,graph:slow=5".parse().unwrap();
        let mut active = ActiveFaults::new(plan);
        let all = |_: &FaultKind| true;
        // page 1: only the slow rule (count 1) fires
        let d = active.decide(FaultTarget::Graph, 1, all);
        assert_eq!(d.fault, None);
        assert_eq!(d.delay, Duration::from_millis(5));
        // page 2 twice fails, third time succeeds
        for _ in 0..2 {
            let d = active.decide(FaultTarget::Graph, 2, all);
            assert!(matches!(
                d.fault,
                Some(FaultKind::Status { status: 500, .. })
            ));
            assert_eq!(d.delay, Duration::ZERO);
        }
        assert_eq!(active.decide(FaultTarget::Graph, 2, all).fault, None);
        // other targets never match
        assert_eq!(active.decide(FaultTarget::Ifs, 2, all).fault, None);
    }
}
