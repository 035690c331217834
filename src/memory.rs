//! The process's resident memory, for the debug log of a run's phases
//! (where the time and the memory of a large run go). Linux only
//! (`/proc/self/status`); elsewhere nothing is known.

/// Resident memory now and at its peak, in MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resident {
    pub now_mib: u64,
    pub peak_mib: u64,
}

/// The current and peak resident set of this process, when the OS says.
pub fn resident() -> Option<Resident> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    Some(Resident {
        now_mib: kib(&status, "VmRSS:")? / 1024,
        peak_mib: kib(&status, "VmHWM:")? / 1024,
    })
}

fn kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Logs (at debug level) that a run reached `phase`, with the memory.
pub fn log_phase(phase: &'static str) {
    match resident() {
        Some(r) => tracing::debug!(rss_mib = r.now_mib, peak_rss_mib = r.peak_mib, "{phase}"),
        None => tracing::debug!("{phase}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_of_proc_status() {
        let status = "Name:\tidrecon\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(kib(status, "VmHWM:"), Some(204_800));
        assert_eq!(kib(status, "VmRSS:"), Some(102_400));
        assert_eq!(kib(status, "VmSwap:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn knows_its_own_memory_on_linux() {
        let r = resident().expect("Linux has /proc/self/status");
        assert!(r.now_mib <= r.peak_mib);
    }
}
