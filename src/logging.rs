//! Logging setup: `tracing` events to stderr, human-readable text on a
//! terminal and JSON lines otherwise (or as `--log-format` says).
//!
//! Level: `RUST_LOG` (env-filter syntax) when set and valid; otherwise from
//! `-v`/`-q`: `-qqq` off, `-qq` error, `-q` warn, default info, `-v` debug
//! for idrecon (info for libraries), `-vv` debug everywhere and trace for
//! idrecon, `-vvv` trace everywhere.

use std::io::IsTerminal;
use tracing::Dispatch;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

/// The filter directives for a verbosity (`-v` count minus `-q` count).
pub fn directives_for(verbosity: i8) -> &'static str {
    match verbosity {
        i8::MIN..=-3 => "off",
        -2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "info,idrecon=debug",
        2 => "debug,idrecon=trace",
        _ => "trace",
    }
}

/// The level filter: `rust_log` (the value of `RUST_LOG`) when it is set,
/// non-empty and valid, else the one for `verbosity`. The error is returned
/// alongside when `rust_log` was invalid, so the caller can warn about it.
pub fn env_filter(verbosity: i8, rust_log: Option<&str>) -> (EnvFilter, Option<String>) {
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        Some(directives) => match EnvFilter::builder().parse(directives) {
            Ok(filter) => (filter, None),
            Err(e) => (
                EnvFilter::new(directives_for(verbosity)),
                Some(format!("ignoring invalid RUST_LOG {directives:?}: {e}")),
            ),
        },
        None => (EnvFilter::new(directives_for(verbosity)), None),
    }
}

/// Builds the subscriber writing to `writer`; `ansi` colours text output.
pub fn dispatch<W>(filter: EnvFilter, format: LogFormat, ansi: bool, writer: W) -> Dispatch
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => Dispatch::new(builder.with_ansi(ansi).finish()),
        LogFormat::Json => Dispatch::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .finish(),
        ),
    }
}

/// Installs the global subscriber (stderr). `format` `None` picks text on a
/// terminal and JSON otherwise. Safe to call more than once: only the first
/// call installs anything; returns whether this call did.
pub fn init(verbosity: i8, format: Option<LogFormat>) -> bool {
    let is_tty = std::io::stderr().is_terminal();
    let format = format.unwrap_or(if is_tty {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    let rust_log = std::env::var("RUST_LOG").ok();
    let (filter, warning) = env_filter(verbosity, rust_log.as_deref());
    let installed = dispatch(filter, format, is_tty, std::io::stderr)
        .try_init()
        .is_ok();
    if let (true, Some(warning)) = (installed, warning) {
        tracing::warn!("{warning}");
    }
    installed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects everything written, for inspection.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn emit_all_levels() {
        tracing::error!(target: "idrecon::test", "e-line");
        tracing::warn!(target: "idrecon::test", "w-line");
        tracing::info!(target: "idrecon::test", "i-line");
        tracing::debug!(target: "idrecon::test", "d-line");
        tracing::debug!(target: "hyper", "lib-debug-line");
        tracing::trace!(target: "idrecon::test", "t-line");
    }

    fn run(verbosity: i8, rust_log: Option<&str>, format: LogFormat) -> String {
        let out = Captured::default();
        let (filter, _) = env_filter(verbosity, rust_log);
        let d = dispatch(filter, format, false, out.clone());
        tracing::dispatcher::with_default(&d, emit_all_levels);
        out.text()
    }

    #[test]
    fn verbosity_selects_levels() {
        let default = run(0, None, LogFormat::Text);
        assert!(default.contains("i-line") && default.contains("e-line"));
        assert!(!default.contains("d-line"));

        let quiet = run(-1, None, LogFormat::Text);
        assert!(quiet.contains("w-line") && !quiet.contains("i-line"));

        let silent = run(-3, None, LogFormat::Text);
        assert!(silent.is_empty(), "{silent}");

        let verbose = run(1, None, LogFormat::Text);
        assert!(verbose.contains("d-line"));
        assert!(
            !verbose.contains("lib-debug-line"),
            "libraries stay at info with -v"
        );
        assert!(!verbose.contains("t-line"));

        let very = run(2, None, LogFormat::Text);
        assert!(very.contains("lib-debug-line") && very.contains("t-line"));
    }

    #[test]
    fn rust_log_overrides_verbosity_and_bad_values_are_reported() {
        let out = run(-2, Some("idrecon=debug"), LogFormat::Text);
        assert!(out.contains("d-line") && !out.contains("lib-debug-line"));
        let (_, warning) = env_filter(0, Some("idrecon=notalevel"));
        assert!(warning.unwrap().contains("RUST_LOG"));
        let (_, none) = env_filter(0, Some("  "));
        assert!(none.is_none());
    }

    #[test]
    fn json_format_writes_one_object_per_line() {
        let out = run(0, None, LogFormat::Json);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["level"], "ERROR");
        assert_eq!(lines[0]["message"], "e-line");
        assert_eq!(lines[2]["target"], "idrecon::test");
    }

    #[test]
    fn init_is_idempotent() {
        // The first call may or may not install (another test may have);
        // after it, a subscriber is certainly installed, so the next cannot.
        init(0, Some(LogFormat::Text));
        assert!(
            !init(0, Some(LogFormat::Json)),
            "second call must not install"
        );
    }
}
