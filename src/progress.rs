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
