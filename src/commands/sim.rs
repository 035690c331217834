//! `idrecon sim`: the simulator as a standalone server.

use crate::cli::SimArgs;
use crate::config::ConfigError;
use crate::error::{AppError, ExitCode};
use crate::sim::faults::FaultPlan;

pub async fn run(args: &SimArgs) -> Result<ExitCode, AppError> {
    let faults = match &args.faults {
        Some(spec) => spec
            .parse::<FaultPlan>()
            .map_err(|e| ConfigError::invalid("--faults", e.to_string()))?,
        None => FaultPlan::default(),
    };
    crate::sim::serve_standalone(args.listen, args.users as usize, args.seed, faults)
        .await
        .map_err(AppError::Other)?;
    Ok(ExitCode::Ok)
}
