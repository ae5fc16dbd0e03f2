//! The load generator: N keep-alive HTTP/1.1 connections (hyper's low-level client), each sending
//! one request after another, recording the latency of each. The requests are either a fixed set
//! sent in rotation, each answer compared byte for byte with the answer checked before the load
//! ([`Requests::Rotate`]), or a new body for every request with its answer checked by a function
//! ([`Requests::Generate`], for writes whose answers carry new ids).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where requests go: `POST path` on a server with a bearer token.
#[derive(Clone, Debug)]
pub struct Target {
    /// Server address.
    pub addr: SocketAddr,
    /// Request path.
    pub path: &'static str,
    authorization: HeaderValue,
    host: HeaderValue,
}

/// Makes the body of each request (argument: the connection's index).
pub type MakeBody = Arc<dyn Fn(usize) -> Bytes + Send + Sync>;
/// Checks an answer's body (the status must be 200 besides); `Err` says what is wrong.
pub type CheckBody = Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

/// What a load run sends and how it checks the answers.
#[derive(Clone)]
pub enum Requests {
    /// These `(request body, expected answer body)` pairs in rotation; connection `k` starts
    /// with pair `k % n`.
    Rotate(Arc<Vec<(Bytes, Bytes)>>),
    /// A new body for every request, its answer checked by a function.
    Generate {
        /// Makes a body.
        body: MakeBody,
        /// Checks an answer.
        check: CheckBody,
    },
}

impl Target {
    /// `POST path` on `addr` with a bearer token.
    pub fn new(addr: SocketAddr, path: &'static str, token: &str) -> Self {
        Self {
            addr,
            path,
            authorization: HeaderValue::from_str(&format!("Bearer {token}"))
                .unwrap_or(HeaderValue::from_static("Bearer -")),
            host: HeaderValue::from_str(&addr.to_string())
                .unwrap_or(HeaderValue::from_static("localhost")),
        }
    }

    fn request(&self, body: Bytes) -> anyhow::Result<Request<Full<Bytes>>> {
        Ok(Request::builder()
            .method(Method::POST)
            .uri(self.path)
            .header(header::HOST, self.host.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, self.authorization.clone())
            .body(Full::new(body))?)
    }
}

/// A keep-alive HTTP/1.1 connection to `target`.
pub async fn connect(target: &Target) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(target.addr)
        .await
        .with_context(|| format!("cannot connect to {}", target.addr))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one request on `sender` and reads the whole answer.
pub async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    body: Bytes,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let request = target.request(body)?;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Sends one request on a new connection; for checking responses before the load.
pub async fn send_once(target: &Target, body: Bytes) -> anyhow::Result<(StatusCode, Bytes)> {
    let mut sender = connect(target).await?;
    send(&mut sender, target, body).await
}

/// How to load a target.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Concurrent connections.
    pub concurrency: usize,
    /// Time before measuring.
    pub warmup: Duration,
    /// Time measured.
    pub measure: Duration,
}

/// What one load run saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latency of every request that started and ended inside the measured window, in ns.
    pub latencies_ns: Vec<u64>,
    /// Length of the measured window.
    pub measured: Duration,
    /// Failed requests over the whole run (warm-up included): transport errors, non-200 answers
    /// and bodies that differ from the expected one.
    pub errors: u64,
    /// Requests answered correctly over the whole run, warm-up included (for checking what a
    /// write load stored).
    pub succeeded: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
}

impl Outcome {
    /// Requests per second of the measured window.
    pub fn rps(&self) -> f64 {
        let seconds = self.measured.as_secs_f64();
        if seconds > 0.0 {
            self.latencies_ns.len() as f64 / seconds
        } else {
            0.0
        }
    }

    /// Adds another run's requests, time and errors to this one.
    pub fn absorb(&mut self, other: Outcome) {
        self.latencies_ns.extend(other.latencies_ns);
        self.measured += other.measured;
        self.errors += other.errors;
        self.succeeded += other.succeeded;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

#[derive(Default)]
struct ConnectionOutcome {
    latencies_ns: Vec<u64>,
    errors: u64,
    succeeded: u64,
    first_error: Option<String>,
}

impl ConnectionOutcome {
    fn fail(&mut self, message: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(message());
        }
    }
}

/// Loads `target` with `load.concurrency` connections for `load.warmup + load.measure`; every
/// answer must be 200 and pass the check of `requests`.
pub async fn run(target: Target, requests: Requests, load: Load) -> anyhow::Result<Outcome> {
    if load.concurrency == 0 {
        bail!("the concurrency must be at least 1");
    }
    if let Requests::Rotate(pairs) = &requests
        && pairs.is_empty()
    {
        bail!("no requests to send");
    }
    let target = Arc::new(target);
    let start = Instant::now();
    let measure_from = start + load.warmup;
    let end = measure_from + load.measure;
    let tasks: Vec<_> = (0..load.concurrency)
        .map(|index| {
            let target = target.clone();
            let requests = requests.clone();
            tokio::spawn(
                async move { connection(&target, &requests, index, measure_from, end).await },
            )
        })
        .collect();
    let mut outcome = Outcome {
        measured: load.measure,
        ..Outcome::default()
    };
    for task in tasks {
        let mut one = task.await.context("a load connection panicked")?;
        outcome.latencies_ns.append(&mut one.latencies_ns);
        outcome.errors += one.errors;
        outcome.succeeded += one.succeeded;
        if outcome.first_error.is_none() {
            outcome.first_error = one.first_error;
        }
    }
    Ok(outcome)
}

/// One connection's loop; reconnects after a transport error.
async fn connection(
    target: &Target,
    requests: &Requests,
    index: usize,
    measure_from: Instant,
    end: Instant,
) -> ConnectionOutcome {
    let mut outcome = ConnectionOutcome {
        latencies_ns: Vec::with_capacity(16 * 1024),
        ..ConnectionOutcome::default()
    };
    let mut next = index;
    while Instant::now() < end {
        let mut sender = match connect(target).await {
            Ok(sender) => sender,
            Err(error) => {
                outcome.fail(|| format!("{error:#}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        loop {
            let (body, expected) = match requests {
                Requests::Rotate(pairs) => {
                    let (body, expected) = &pairs[next % pairs.len()];
                    next += 1;
                    (body.clone(), Some(expected))
                }
                Requests::Generate { body, .. } => (body(index), None),
            };
            let started = Instant::now();
            if started >= end {
                break;
            }
            let result = send(&mut sender, target, body).await;
            let finished = Instant::now();
            match result {
                Ok((StatusCode::OK, body)) => {
                    let verdict = match (requests, expected) {
                        (_, Some(expected)) if body == *expected => Ok(()),
                        (_, Some(_)) => Err("the answer differs from the checked one".to_string()),
                        (Requests::Generate { check, .. }, None) => check(&body),
                        (Requests::Rotate(_), None) => Err("no expected answer".to_string()),
                    };
                    match verdict {
                        Ok(()) => {
                            outcome.succeeded += 1;
                            if started >= measure_from && finished <= end {
                                let nanos = finished.duration_since(started).as_nanos();
                                outcome
                                    .latencies_ns
                                    .push(u64::try_from(nanos).unwrap_or(u64::MAX));
                            }
                        }
                        Err(why) => outcome.fail(|| {
                            format!(
                                "{why}: {}",
                                String::from_utf8_lossy(&body[..body.len().min(300)])
                            )
                        }),
                    }
                }
                Ok((status, body)) => outcome.fail(|| {
                    format!(
                        "status {status}, body {}",
                        String::from_utf8_lossy(&body[..body.len().min(300)])
                    )
                }),
                Err(error) => {
                    outcome.fail(|| format!("{error:#}"));
                    break;
                }
            }
        }
    }
    outcome
}
