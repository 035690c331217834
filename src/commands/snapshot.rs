//! `idrecon snapshot export FILE [--pseudonymise]`: what one run reads, as
//! a JSON file for `idrecon sim --from` (src/snapshot/).

use super::common::load_config;
use crate::cli::{Cli, SnapshotCommand, SnapshotExportArgs};
use crate::config::ConfigError;
use crate::error::{AppError, ExitCode};
use crate::snapshot::pseudonymise::Pseudonymiser;
use crate::snapshot::{export, SnapshotError};
use crate::worker::live_sources;

pub async fn run(cli: &Cli, command: &SnapshotCommand) -> Result<ExitCode, AppError> {
    match command {
        SnapshotCommand::Export(args) => run_export(cli, args).await,
    }
}

async fn run_export(cli: &Cli, args: &SnapshotExportArgs) -> Result<ExitCode, AppError> {
    let cfg = load_config(cli)?;
    let pseudonymiser = match (&args.pseudonymise, &args.key_file) {
        (false, _) => None,
        (true, None) => Some(Pseudonymiser::random()),
        (true, Some(path)) => {
            let key = std::fs::read(path).map_err(|e| {
                ConfigError::invalid("--key-file", format!("cannot read {}: {e}", path.display()))
            })?;
            let key = key.trim_ascii();
            if key.len() < 16 {
                return Err(ConfigError::invalid(
                    "--key-file",
                    format!("{} holds fewer than 16 bytes", path.display()),
                )
                .into());
            }
            Some(Pseudonymiser::new(key))
        }
    };
    let sources = live_sources(&cfg)?;
    let mut file = export(&cfg, &sources).await.map_err(failure)?;
    if let Some(p) = &pseudonymiser {
        p.apply(&mut file);
    }
    file.write(&args.file).map_err(failure)?;
    eprintln!(
        "idrecon: wrote {} Azure AD, {} IFS and {} Flow users{} to {}",
        file.azure.len(),
        file.ifs.len(),
        file.flow.len(),
        if file.pseudonymised {
            " (pseudonymised)"
        } else {
            ""
        },
        args.file.display()
    );
    Ok(ExitCode::Ok)
}

fn failure(e: SnapshotError) -> AppError {
    AppError::Other(anyhow::anyhow!("snapshot export: {e}"))
}
