//! The `switchboard` binary: parse the command line and run it.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    switchboard::cli::run(switchboard::cli::Cli::parse()).await
}
