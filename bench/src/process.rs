//! The server process of the `fanout` and `replay` scenarios, seen from the driver: started as a
//! child (this binary with the hidden `--live-server` role, see `live_server.rs`), measured from
//! `/proc/<pid>` (CPU time, resident memory), stopped by closing its standard input.

use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The line the server prints on standard output when it listens, followed by [`Ready`] as JSON.
pub const READY: &str = "bench-live-server ready ";

/// What the server process tells the driver when it is ready.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ready {
    /// Where it listens (`/graphql`, `/graphql/ws`, `/bench/plain/...`).
    pub addr: SocketAddr,
    /// The owner's API token.
    pub token: String,
    /// The open SMS conversation the scenarios send to and subscribe to.
    pub conversation: uuid::Uuid,
    /// Its soft limit of open files after raising it.
    pub nofile: u64,
    /// `sqlite` or `postgres`, and the durability settings read back from the database.
    pub database: String,
}

/// A running server process.
pub struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Its process id.
    pub pid: u32,
    /// What it said when ready.
    pub ready: Ready,
}

impl ServerProcess {
    /// Starts this binary as a server with `args` (after `--live-server`) and waits until it
    /// listens.
    pub fn spawn(args: &[String]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find this binary")?;
        let mut child = Command::new(exe)
            .arg("--live-server")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start the server process")?;
        let pid = child.id();
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .context("the server process has no standard output")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = loop {
            let Some(line) = lines.next() else {
                let status = child.wait()?;
                bail!("the server process ended before it was ready ({status})");
            };
            let line = line.context("cannot read the server process's output")?;
            if let Some(json) = line.strip_prefix(READY) {
                break serde_json::from_str::<Ready>(json)
                    .context("the server process's ready line is not understood")?;
            }
            eprintln!("bench: server: {line}");
        };
        // Anything it prints later goes to our standard error.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("bench: server: {line}");
            }
        });
        Ok(Self {
            child,
            stdin,
            pid,
            ready,
        })
    }

    /// Closes its standard input (it then shuts down) and waits at most 10 s for it to exit,
    /// killing it after that.
    pub fn stop(mut self) -> anyhow::Result<()> {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the server process exited with {status}");
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.child.kill()?;
                self.child.wait()?;
                bail!("the server process did not stop within 10 s and was killed");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`; 100, the Linux ABI's
/// `USER_HZ`, if `getconf` is missing).
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

/// User + system CPU time of process `pid` (`utime` + `stime` of `/proc/<pid>/stat`: every thread
/// of the process, the exited ones included).
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces: the fields after it follow the last ')'.
    let (_, rest) = stat
        .rsplit_once(')')
        .context("/proc/<pid>/stat has no command name")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (`state`) is fields[0]: `utime` (14) is fields[11], `stime` (15) fields[12].
    let field = |index: usize| -> anyhow::Result<u64> {
        fields
            .get(index)
            .context("/proc/<pid>/stat is too short")?
            .parse::<u64>()
            .context("/proc/<pid>/stat has a non-numeric time")
    };
    let ticks = field(11)? + field(12)?;
    let per_second = CLOCK_TICKS.get_or_init(clock_ticks);
    Ok(Duration::from_nanos(
        ticks.saturating_mul(1_000_000_000) / per_second,
    ))
}

static CLOCK_TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// Resident memory of process `pid` in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, &["VmRSS:"]).map(|v| v[0])
}

/// The resident memory of process `pid` by kind: (anonymous, file-backed) bytes (`RssAnon`,
/// `RssFile` of `/proc/<pid>/status`); the heap is in the first, mapped files (the database's
/// memory map) in the second.
pub fn rss_parts(pid: u32) -> anyhow::Result<(u64, u64)> {
    status_kib(pid, &["RssAnon:", "RssFile:"]).map(|v| (v[0], v[1]))
}

/// The `kB` fields `names` of `/proc/<pid>/status`, in bytes, in order.
fn status_kib(pid: u32, names: &[&str]) -> anyhow::Result<Vec<u64>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    names
        .iter()
        .map(|name| {
            let line = status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .with_context(|| format!("/proc/<pid>/status has no {name}"))?;
            let kib = line
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .with_context(|| format!("{name} is not a number of kB"))?;
            Ok(kib * 1024)
        })
        .collect()
}

/// Raises this process's soft limit of open files to its hard limit; returns (soft, hard).
pub fn raise_nofile() -> anyhow::Result<(u64, u64)> {
    let soft = rlimit::increase_nofile_limit(u64::MAX).context("cannot raise RLIMIT_NOFILE")?;
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).context("getrlimit")?;
    Ok((soft, hard))
}
