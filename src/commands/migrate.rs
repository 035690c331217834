//! `idrecon migrate`: applies the store migrations and exits.

use super::common::{open_store, store_error, store_url};
use crate::cli::Cli;
use crate::error::{AppError, ExitCode};
use crate::store::Store;

pub async fn run(cli: &Cli) -> Result<ExitCode, AppError> {
    // Only the store matters here: with --db the rest of the config may be absent.
    let url = store_url(cli)?;
    let store = open_store(&url).await?;
    store
        .migrate()
        .await
        .map_err(|e| store_error(e, "applying migrations"))?;
    eprintln!("store {url}: migrations applied, schema is up to date");
    Ok(ExitCode::Ok)
}
