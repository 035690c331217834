//! correlate + classify on synthetic tenants of 10k, 100k and 1M people per
//! source, with about 10% drift of various kinds.
//!
//! `cargo bench --bench reconcile` runs everything; for the peak memory of
//! one size run e.g.
//! `cargo bench --bench reconcile -- --profile-time 5 reconcile/1000000`:
//! the peak RSS after generating the snapshots and after reconciling is
//! printed to stderr (Linux).

use compact_str::format_compact;
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use idrecon::model::{
    AadUser, AadUserFields, FlowUser, FlowUserFields, IfsUser, IfsUserFields, Snapshots,
};
use idrecon::reconcile::{classify, correlate, reconcile, MatchOptions};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// A deterministic tenant of `n` people. Per 100 people: 4 Flow IDs without
/// the domain, 1 mail instead of UPN, 1 sAMAccountName, 1 object ID, 1 missing
/// in Flow, 1 missing in IFS, 1 left the company (no Azure user), 1 disabled
/// in Azure, 1 upper-case Flow ID (fine); every 7th mismatch is sync-managed,
/// every 50th name has non-ASCII letters, every 1000th IFS user shares its
/// Directory ID, every 997th has none. Plus 1% Azure users that use neither
/// IFS nor Flow and a few machine users.
fn tenant(n: usize) -> Snapshots {
    let mut s = Snapshots {
        azure: Vec::with_capacity(n + n / 100),
        ifs: Vec::with_capacity(n),
        flow: Vec::with_capacity(n),
    };
    for k in 0..n {
        let first = if k % 50 == 7 { "åsa" } else { "john" };
        let upn = format!("{first}.doe{k}@contoso.com");
        let mail = format!("jd{k}@contoso.com");
        let sam = format!("JD{k:07}");
        let id = format!(
            "{:08x}-1111-4222-8333-{k:012x}",
            (k as u64).wrapping_mul(2654435761) as u32
        );
        let drift = k % 100;
        let mut dir = upn.clone();
        if k % 1000 == 999 {
            dir = format!("{first}.doe{}@contoso.com", k - 1); // duplicate of the previous one
        }
        if k % 997 == 996 {
            dir = String::new();
        }
        let flow_id = match drift {
            0..=3 => Some(format!("{first}.doe{k}")),
            4 => Some(mail.clone()),
            5 => Some(sam.clone()),
            6 => Some(id.to_uppercase()),
            7 => None,
            11 => Some(upn.to_uppercase()),
            _ => Some(upn.clone()),
        };
        if drift != 9 {
            s.azure.push(AadUser::from(AadUserFields {
                id: id.as_str().into(),
                user_principal_name: upn.as_str().into(),
                mail: Some(mail.into()),
                display_name: Some(format_compact!("John Doe {k}")),
                account_enabled: drift != 10,
                employee_id: None,
                on_premises_sam_account_name: Some(sam.into()),
                user_type: Some("Member".into()),
            }));
        }
        if drift != 8 {
            s.ifs.push(IfsUser::from(IfsUserFields {
                identity: format_compact!("JDOE{k}"),
                description: Some(format_compact!("John Doe {k}")),
                directory_id: Some(dir.into()),
                active: true,
                email: None,
            }));
        }
        if let Some(user_id) = flow_id {
            s.flow.push(FlowUser::from(FlowUserFields {
                user_id: user_id.into(),
                name: Some(format_compact!("John Doe {k}")),
                email: None,
                active: true,
                user_type: "Full".into(),
                sync_source: (drift < 7 && k % 7 == 0).then(|| "AzureAD".into()),
            }));
        }
        if k % 100 == 50 {
            s.azure.push(AadUser::from(AadUserFields {
                id: format_compact!("ffffffff-0000-4000-8000-{k:012x}"),
                user_principal_name: format_compact!("nobody{k}@contoso.com"),
                mail: None,
                display_name: None,
                account_enabled: true,
                employee_id: None,
                on_premises_sam_account_name: None,
                user_type: None,
            }));
        }
        if k % 10_000 == 0 {
            s.flow.push(FlowUser::from(FlowUserFields {
                user_id: format_compact!("svc{k}"),
                name: None,
                email: None,
                active: true,
                user_type: "Machine".into(),
                sync_source: None,
            }));
        }
    }
    s
}

/// Peak resident set size so far, in MiB (Linux; `None` elsewhere).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU time of this process so far (all threads), in seconds (Linux; `None` elsewhere):
/// on a busy machine a steadier figure than wall time.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn bench_reconcile(c: &mut Criterion) {
    let opts = MatchOptions::default();
    let mut group = c.benchmark_group("reconcile");
    for n in [10_000usize, 100_000, 1_000_000] {
        if n >= 1_000_000 {
            group.sample_size(10);
            group.sampling_mode(SamplingMode::Flat);
            group.measurement_time(Duration::from_secs(30));
            group.warm_up_time(Duration::from_secs(1));
        } else if n >= 100_000 {
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(10));
        } else {
            group.sample_size(20);
            group.measurement_time(Duration::from_secs(5));
        }
        group.throughput(Throughput::Elements(n as u64));
        let mut snapshots: Option<Snapshots> = None;
        let mut reported = false;
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            let s = snapshots.get_or_insert_with(|| {
                let s = tenant(n);
                if let Some(peak) = peak_rss_mib() {
                    eprintln!("n={n}: peak RSS after generating the snapshots: {peak:.0} MiB");
                }
                s
            });
            b.iter(|| black_box(reconcile(black_box(s), &opts)));
            if !reported {
                reported = true;
                let (wall, cpu) = (Instant::now(), cpu_seconds());
                let people = correlate(s, &opts);
                let (wall_correlate, cpu_correlate) = (wall.elapsed(), cpu_seconds());
                let outcome = classify(s, &people, &opts);
                let (wall_total, cpu_total) = (wall.elapsed(), cpu_seconds());
                drop(people);
                if let (Some(c0), Some(c1), Some(c2)) = (cpu, cpu_correlate, cpu_total) {
                    eprintln!(
                        "n={n}: one run: correlate {:.2} s wall / {:.2} s CPU, classify {:.2} s wall / {:.2} s CPU",
                        wall_correlate.as_secs_f64(),
                        c1 - c0,
                        (wall_total - wall_correlate).as_secs_f64(),
                        c2 - c1
                    );
                }
                if let Some(peak) = peak_rss_mib() {
                    eprintln!(
                        "n={n}: peak RSS after reconciling: {peak:.0} MiB ({} people, {} ok, {} findings)",
                        outcome.people,
                        outcome.ok,
                        outcome.findings.len()
                    );
                }
            }
        });
    }
    group.finish();
}

criterion_group!(benches, bench_reconcile);
criterion_main!(benches);
