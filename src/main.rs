//! The `idrecon` binary: parse arguments, set up logging, run the command,
//! exit with the contract's code. Everything else lives in the library.

use idrecon::cli::Cli;
use idrecon::error::ExitCode;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse_or_exit();
    idrecon::logging::init(cli.verbosity(), cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("idrecon: cannot start the async runtime: {e}");
            return ExitCode::Failure.into();
        }
    };
    runtime.block_on(idrecon::commands::dispatch(cli)).into()
}
