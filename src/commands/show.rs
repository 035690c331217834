//! `idrecon show RUN_ID`: a past run's report in any format.

use super::common::{emit_report, open_store, report_format, store_error, store_url};
use crate::cli::{Cli, ShowArgs};
use crate::error::{AppError, ExitCode};
use crate::store::{Store, StoreError};

pub async fn run(cli: &Cli, args: &ShowArgs) -> Result<ExitCode, AppError> {
    let url = store_url(cli)?;
    let store = open_store(&url).await?;
    let report = match store.load_report(args.run_id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Err(AppError::Other(anyhow::anyhow!(
                "run {} does not exist (see `idrecon history`)",
                args.run_id
            )))
        }
        Err(e @ StoreError::RunNotFinished { .. }) => {
            return Err(AppError::Other(anyhow::anyhow!("{e}")))
        }
        Err(e) => return Err(store_error(e, "loading the run")),
    };
    emit_report(
        &report,
        report_format(args.format),
        args.output.as_deref(),
        args.all,
    )?;
    Ok(ExitCode::Ok)
}
