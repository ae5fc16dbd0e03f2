//! Tokio runtimes whose threads are pinned to one CPU core.

use anyhow::{Context, bail};
use core_affinity::CoreId;

/// The core with the given index, if this process may run on it.
pub fn core(index: usize) -> anyhow::Result<CoreId> {
    let cores = core_affinity::get_core_ids().context("cannot list the CPU cores")?;
    match cores.iter().find(|c| c.id == index) {
        Some(core) => Ok(*core),
        None => bail!(
            "core {index} is not available (available: {:?}); use --no-pin or other core numbers",
            cores.iter().map(|c| c.id).collect::<Vec<_>>()
        ),
    }
}

/// A multi-thread runtime with `threads` workers. With a core, every thread the runtime starts
/// (workers and blocking threads) is pinned to it; threads those threads spawn (for example the
/// SQLite worker thread of each pool connection) inherit the pinning.
pub fn runtime(
    name: &'static str,
    threads: usize,
    core: Option<CoreId>,
) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(threads.max(1))
        .thread_name(name)
        .enable_all();
    if let Some(core) = core {
        builder.on_thread_start(move || {
            if !core_affinity::set_for_current(core) {
                eprintln!("warning: cannot pin a {name} thread to core {}", core.id);
            }
        });
    }
    builder
        .build()
        .with_context(|| format!("cannot start the {name} runtime"))
}

/// Runs `future` as a task on `runtime` (so on its pinned workers, not on the calling thread) and
/// waits for it.
pub fn run_on<F, T>(runtime: &tokio::runtime::Runtime, future: F) -> anyhow::Result<T>
where
    F: Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    runtime
        .block_on(runtime.spawn(future))
        .context("a benchmark task panicked")?
}
