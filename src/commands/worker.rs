//! `idrecon run`: the long-running worker ([`crate::worker`]): reconciles on
//! `schedule.cron`, serves `/healthz`, `/metrics` and the run history pages
//! on `server.listen` when set. Exits 0 once stopped by SIGINT/SIGTERM.

use super::common::{load_config, open_store};
use crate::cli::Cli;
use crate::error::{AppError, ExitCode};

pub async fn run(cli: &Cli) -> Result<ExitCode, AppError> {
    let cfg = load_config(cli)?;
    let store = open_store(&cfg.store.url).await?;
    let result = crate::worker::run_until_signalled(&cfg, &store).await;
    store.close().await;
    result.map(|()| ExitCode::Ok)
}
