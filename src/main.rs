//! The `switchboard` binary: parse the command line and run it.

use clap::Parser;

/// mimalloc instead of the C library's allocator. A request allocates many small, short-lived
/// objects (rows, GraphQL values, JSON); glibc's `malloc` merges the small blocks freed since its
/// last large allocation on each large one (`malloc_consolidate`), which a profile of the metric
/// resolver showed as its largest cost: its overhead over its SQL went from 66 to 39 µs a query
/// with mimalloc (README, Benchmarks). The bench binary, which runs this server in process, uses
/// the same.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    switchboard::cli::run(switchboard::cli::Cli::parse()).await
}
