//! `idrecon migrate`: applies the store migrations and exits.

use super::common::{load_config, open_store, store_error};
use crate::cli::Cli;
use crate::error::{AppError, ExitCode};
use crate::store::Store;

pub async fn run(cli: &Cli) -> Result<ExitCode, AppError> {
    // Only the store matters here: with --db the rest of the config may be absent.
    let url = match &cli.db {
        Some(db) => {
            crate::config::validate_store_url(db)
                .map_err(|m| crate::config::ConfigError::invalid("--db", m))?;
            db.clone()
        }
        None => load_config(cli)?.store.url,
    };
    let store = open_store(&url).await?;
    store
        .migrate()
        .await
        .map_err(|e| store_error(e, "applying migrations"))?;
    eprintln!("store {url}: migrations applied, schema is up to date");
    Ok(ExitCode::Ok)
}
