//! The `idrecon` binary: parse arguments, set up logging, run the command,
//! exit with the contract's code. Everything else lives in the library.

use idrecon::cli::Cli;
use idrecon::error::ExitCode;

/// mimalloc returns freed memory to the OS far better than glibc's malloc
/// under many threads and many small strings (the snapshots of a large
/// tenant); it keeps peak RSS down. Built with `no_thp` (no transparent huge
/// pages): with them a first touch zeroes 2 MiB at a time, and at 1M people
/// a delta run was 15 % slower than with glibc (README, "Performance").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
