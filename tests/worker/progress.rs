//! What `run_once` tells a [`RunProgress`] observer, against the simulator:
//! each source started and finished with its count, then reconciling, then
//! each action numbered as it is sent.

use crate::app_support::TestApp;
use crate::worker_support;

use idrecon::clock::SystemClock;
use idrecon::job::RunRequest;
use idrecon::model::ActionStatus;
use idrecon::progress::{Fetched, RunProgress, Stage};
use idrecon::sources::System;
use idrecon::worker::reconcile;
use std::sync::Mutex;
use worker_support::{enable_fixes, fast_http};

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Started(System),
    Finished(System, Fetched),
    Stage(Stage),
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

impl RunProgress for Recorder {
    fn source_started(&self, system: System) {
        self.0.lock().unwrap().push(Event::Started(system));
    }
    fn source_finished(&self, system: System, fetched: Fetched) {
        self.0
            .lock()
            .unwrap()
            .push(Event::Finished(system, fetched));
    }
    fn stage(&self, stage: Stage) {
        self.0.lock().unwrap().push(Event::Stage(stage));
    }
}

impl Recorder {
    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_reports_sources_reconciling_and_each_action() {
    let env = TestApp::builder(150, 3)
        .edit(enable_fixes)
        .http(fast_http())
        .start()
        .await;
    let cfg = env.config();
    let store = env.store().await;
    let sources = env.sources();
    let recorder = Recorder::default();
    let go_on = || false;
    let apply = RunRequest {
        apply: true,
        ..RunRequest::manual()
    };
    let report = reconcile(
        &cfg,
        &store,
        &sources,
        &SystemClock,
        &go_on,
        Some(&recorder),
        &apply,
    )
    .await
    .unwrap()
    .report;
    let events = recorder.take();

    // The three sources, each started before it finished, with its count.
    let position = |e: &Event| events.iter().position(|x| x == e);
    let expected = [
        (System::Azure, Fetched::Users(report.sources.azure.users)),
        (System::Ifs, Fetched::Users(report.sources.ifs.users)),
        (System::Flow, Fetched::Users(report.sources.flow.users)),
    ];
    for (system, fetched) in expected {
        let started = position(&Event::Started(system)).expect("started");
        let finished = position(&Event::Finished(system, fetched))
            .unwrap_or_else(|| panic!("{system} finished with {fetched:?}: {events:?}"));
        assert!(started < finished);
    }
    // Then reconciling, then every sent action numbered 1..=n of n.
    let reconciling = position(&Event::Stage(Stage::Reconciling)).expect("reconciling");
    assert_eq!(reconciling, 6, "{events:?}");
    let sent = report
        .actions
        .iter()
        .filter(|a| matches!(a.status, ActionStatus::Applied | ActionStatus::Failed))
        .count() as u64;
    assert!(sent > 0, "{:?}", report.actions);
    let applying: Vec<Event> = (1..=sent)
        .map(|current| {
            Event::Stage(Stage::Applying {
                current,
                total: sent,
            })
        })
        .collect();
    assert_eq!(events[7..], applying[..], "{events:?}");

    // A second run lists only Azure's changes since the first.
    let report = reconcile(
        &cfg,
        &store,
        &sources,
        &SystemClock,
        &go_on,
        Some(&recorder),
        &RunRequest::manual(),
    )
    .await
    .unwrap()
    .report;
    assert_eq!(report.sources.azure.delta, Some(true));
    let events = recorder.take();
    assert!(
        events.contains(&Event::Finished(System::Azure, Fetched::Changes(0))),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Stage(Stage::Applying { .. }))),
        "report mode applies nothing: {events:?}"
    );
}
