//! Progress of a run as it goes: the [`RunProgress`] observer the run
//! reports to, and [`TerminalProgress`], its indicatif implementation for
//! interactive `reconcile` and `demo` (one spinner per source showing the
//! users read, then "reconciling", then "applying k/n").
//!
//! Progress is drawn only when stderr is a terminal; piped, redirected or
//! under a service manager nothing is printed (logs carry what matters).

use crate::sources::System;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

/// What one source delivered, as far as progress is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// A complete listing of this many users.
    Users(u64),
    /// A delta round: this many changes since the previous run.
    Changes(u64),
    /// The source could not deliver.
    Failed,
}

/// The step a run is in after the sources were read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Linking, classifying and planning.
    Reconciling,
    /// Sending action `current` of `total` to Flow.
    Applying { current: u64, total: u64 },
}

/// Observer of a run's progress. Calls come from the run's own task (the
/// three source calls concurrently); implementations must be cheap.
pub trait RunProgress: Send + Sync {
    /// `system` is being read.
    fn source_started(&self, system: System);
    /// `system` finished reading.
    fn source_finished(&self, system: System, fetched: Fetched);
    /// The run moved on to `stage`.
    fn stage(&self, stage: Stage);
}

const TICK: Duration = Duration::from_millis(120);

/// Spinners on stderr (or any indicatif draw target), one line per source
/// and one for the current stage. Dropping it clears the stage line and
/// leaves the source lines.
#[derive(Debug)]
pub struct TerminalProgress {
    multi: MultiProgress,
    azure: ProgressBar,
    ifs: ProgressBar,
    flow: ProgressBar,
    /// Added below the sources on the first [`RunProgress::stage`] call.
    stage: OnceLock<ProgressBar>,
}

impl TerminalProgress {
    /// Progress on stderr when stderr is a terminal; `None` otherwise.
    pub fn for_stderr() -> Option<TerminalProgress> {
        std::io::stderr()
            .is_terminal()
            .then(|| TerminalProgress::with_target(ProgressDrawTarget::stderr()))
    }

    /// Progress drawn to `target` (tests draw into a recording terminal).
    pub fn with_target(target: ProgressDrawTarget) -> TerminalProgress {
        let multi = MultiProgress::with_draw_target(target);
        let line = |label: &str| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(spinner_style());
            bar.set_prefix(format!("{label:<9}"));
            bar
        };
        let azure = line(label(System::Azure));
        let ifs = line(label(System::Ifs));
        let flow = line(label(System::Flow));
        TerminalProgress {
            multi,
            azure,
            ifs,
            flow,
            stage: OnceLock::new(),
        }
    }

    fn stage_bar(&self) -> &ProgressBar {
        self.stage.get_or_init(|| {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(stage_style());
            bar.enable_steady_tick(TICK);
            bar
        })
    }

    fn bar(&self, system: System) -> &ProgressBar {
        match system {
            System::Azure => &self.azure,
            System::Ifs => &self.ifs,
            System::Flow => &self.flow,
        }
    }
}

fn label(system: System) -> &'static str {
    match system {
        System::Azure => "Azure AD",
        System::Ifs => "IFS",
        System::Flow => "Flow",
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn stage_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn done_style() -> ProgressStyle {
    ProgressStyle::with_template("  {prefix} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl RunProgress for TerminalProgress {
    fn source_started(&self, system: System) {
        let bar = self.bar(system);
        bar.set_message("reading…");
        bar.enable_steady_tick(TICK);
    }

    fn source_finished(&self, system: System, fetched: Fetched) {
        let bar = self.bar(system);
        bar.set_style(done_style());
        bar.finish_with_message(match fetched {
            Fetched::Users(1) => "1 user".to_string(),
            Fetched::Users(n) => format!("{n} users"),
            Fetched::Changes(1) => "1 change since the last run".to_string(),
            Fetched::Changes(n) => format!("{n} changes since the last run"),
            Fetched::Failed => "failed".to_string(),
        });
    }

    fn stage(&self, stage: Stage) {
        let bar = self.stage_bar();
        match stage {
            Stage::Reconciling => bar.set_message("reconciling"),
            Stage::Applying { current, total } => {
                if bar.length() != Some(total) {
                    bar.set_style(bar_style());
                    bar.set_length(total);
                    bar.set_message("applying");
                }
                bar.set_position(current);
            }
        }
    }
}

impl Drop for TerminalProgress {
    fn drop(&mut self) {
        for bar in [&self.azure, &self.ifs, &self.flow] {
            if !bar.is_finished() {
                bar.finish_and_clear();
            }
        }
        if let Some(stage) = self.stage.get() {
            stage.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::TermLike;
    use std::sync::{Arc, Mutex};

    /// A terminal that keeps everything written to it.
    #[derive(Debug, Clone, Default)]
    struct Recording(Arc<Mutex<String>>);

    impl Recording {
        fn text(&self) -> String {
            self.0.lock().unwrap().clone()
        }
    }

    impl TermLike for Recording {
        fn width(&self) -> u16 {
            100
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            let mut text = self.0.lock().unwrap();
            text.push_str(s);
            text.push('\n');
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn shows_users_per_source_then_reconciling_then_applying() {
        let term = Recording::default();
        let progress =
            TerminalProgress::with_target(ProgressDrawTarget::term_like(Box::new(term.clone())));
        for system in [System::Azure, System::Ifs, System::Flow] {
            progress.source_started(system);
        }
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            term.text().contains("Azure AD  reading…"),
            "{}",
            term.text()
        );
        progress.source_finished(System::Azure, Fetched::Changes(3));
        progress.source_finished(System::Ifs, Fetched::Users(1));
        progress.source_finished(System::Flow, Fetched::Users(950));
        progress.stage(Stage::Reconciling);
        std::thread::sleep(Duration::from_millis(300));
        assert!(term.text().contains("reconciling"), "{}", term.text());
        progress.stage(Stage::Applying {
            current: 2,
            total: 7,
        });
        std::thread::sleep(Duration::from_millis(300));
        drop(progress);
        let text = term.text();
        assert!(
            text.contains("Azure AD  3 changes since the last run"),
            "{text}"
        );
        assert!(text.contains("IFS       1 user\n"), "{text}");
        assert!(text.contains("Flow      950 users"), "{text}");
        assert!(text.contains("applying ["), "{text}");
        assert!(text.contains("] 2/7"), "{text}");
    }

    #[test]
    fn a_failed_source_says_so() {
        let term = Recording::default();
        let progress =
            TerminalProgress::with_target(ProgressDrawTarget::term_like(Box::new(term.clone())));
        progress.source_started(System::Ifs);
        progress.source_finished(System::Ifs, Fetched::Failed);
        drop(progress);
        assert!(term.text().contains("IFS       failed"), "{}", term.text());
    }
}
