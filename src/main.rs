//! The `threada` binary: parse the command line and dispatch.

use std::process::ExitCode;

use clap::Parser;
use threada::cli::{Cli, run};

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
