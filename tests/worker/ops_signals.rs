//! SIGTERM and SIGINT cancel the shutdown token (and do not kill the
//! process). Its own test binary: signal dispositions are process-wide.

#![cfg(unix)]

use idrecon::schedule::install_signal_handlers;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

async fn assert_signal_cancels(signal: Signal) {
    let token = CancellationToken::new();
    install_signal_handlers(token.clone()).expect("install handlers");
    assert!(!token.is_cancelled());
    kill(Pid::this(), signal).expect("send signal to self");
    tokio::time::timeout(Duration::from_secs(5), token.cancelled())
        .await
        .unwrap_or_else(|_| panic!("{signal} did not cancel the token"));
}

#[tokio::test]
async fn sigterm_then_sigint_cancel_the_token() {
    assert_signal_cancels(Signal::SIGTERM).await;
    assert_signal_cancels(Signal::SIGINT).await;
}
