//! `idrecon sim`: the simulator as a standalone server, serving generated
//! people or a file written by `snapshot export` (`--from`).

use crate::cli::SimArgs;
use crate::config::ConfigError;
use crate::error::{AppError, ExitCode};
use crate::sim::faults::FaultPlan;
use crate::snapshot::SnapshotFile;

pub async fn run(args: &SimArgs) -> Result<ExitCode, AppError> {
    let faults = match &args.faults {
        Some(spec) => spec
            .parse::<FaultPlan>()
            .map_err(|e| ConfigError::invalid("--faults", e.to_string()))?,
        None => FaultPlan::default(),
    };
    let (tenant, expected) = match &args.from {
        Some(path) => {
            let file = SnapshotFile::read(path)
                .map_err(|e| ConfigError::invalid("--from", e.to_string()))?;
            (file.into_tenant(), None)
        }
        None => {
            let generated = crate::sim::generate::generate(args.users as usize, args.seed);
            (generated.tenant, Some(generated.expected.len()))
        }
    };
    let certificates = match &args.certificate {
        Some(path) => vec![std::fs::read_to_string(path).map_err(|e| {
            ConfigError::invalid(
                "--certificate",
                format!("cannot read {}: {e}", path.display()),
            )
        })?],
        None => Vec::new(),
    };
    crate::sim::serve_standalone(args.listen, tenant, expected, faults, &certificates)
        .await
        .map_err(AppError::Other)?;
    Ok(ExitCode::Ok)
}
