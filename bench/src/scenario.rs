//! The scenarios. Each one is a GraphQL request and a plain axum handler that does the same work
//! (the same authentication, the same database reads) and answers the same JSON, so that the ratio
//! of their throughputs is the cost of the GraphQL layer.
//!
//! To add a scenario: add a variant to [`Scenario`] (and to [`Scenario::ALL`]), its plain handler to
//! [`plain_routes`], its requests to [`Scenario::plan`], its levels and target to
//! [`Scenario::default_levels`] and [`Scenario::criterion`].

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::ValueEnum;
use sea_orm::DatabaseConnection;
use serde::Serialize;

use crate::load::{CheckBody, MakeBody, Target};
use crate::server::Env;

/// A benchmark scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// `{ viewer { user { id displayName email } } }`: authentication (one query) and the caller.
    Viewer,
    /// A page of 100 contacts with tags and custom attributes among `--contacts` contacts.
    Contacts,
    /// The inbox: a page of 50 conversations with requester, assignee, queue, tags, last message
    /// and author, and unread count, among `--conversations` conversations (see `inbox.rs`).
    Inbox,
    /// `sendMessage` against raw inserts of the same rows (see `send.rs`).
    Send,
    /// `messageAdded` subscribers on one server against a plain websocket broadcast (see
    /// `live.rs`); only when named.
    Fanout,
    /// Subscribers resuming 10,000 events back against the same frames from a plain websocket
    /// (see `live.rs`); only when named.
    Replay,
    /// Webhook deliveries from the event log to a local receiver against a plain sender (see
    /// `webhooks.rs`); only when named.
    Webhooks,
    /// A broadcast to `--broadcast-contacts` contacts: time to enqueue and messages per second,
    /// against plain SQL doing the same writes (see `broadcast.rs`); only when named.
    Broadcast,
    /// An RSVP call campaign to `--call-campaign-receivers` receivers on the simulator: receivers
    /// finished per second and the dialer's SQL statements per receiver (see
    /// `call_campaign.rs`); only when named.
    CallCampaign,
    /// Metric queries (`first_response_time` daily by queue over 90 days, `conversations_created`
    /// hourly over a week) over 1,000,000 conversations against the SQL they run and a
    /// brute-force scan (see `metrics.rs`); only when named.
    Metrics,
}

/// What a scenario must reach to meet its target.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Criterion {
    /// `graphql_rps / plain_rps` at least this.
    Throughput(f64),
    /// `graphql_p50 / plain_p50` at most this.
    Latency(f64),
}

/// How the requests of a scenario are made.
pub enum Requests {
    /// The same bodies for both sides, sent in rotation; both sides must answer each with the
    /// same JSON.
    Fixed(Vec<Bytes>),
    /// A new body for every request (writes), its answer checked by a function.
    Generate {
        /// Makes a body (argument: the client's index).
        body: MakeBody,
        /// Checks an answer.
        check: CheckBody,
    },
}

/// The two sides of a scenario.
pub struct Plan {
    /// The GraphQL server.
    pub graphql: Target,
    /// The plain handler.
    pub plain: Target,
    /// What both are sent.
    pub requests: Requests,
    /// For writes: the conversations written to (to check that every answered request stored
    /// one message), and whether to measure the database alone too.
    pub writes: Option<Arc<Vec<uuid::Uuid>>>,
}

impl Scenario {
    /// The HTTP scenarios, in the order they run (all of them by default).
    pub const ALL: &'static [Scenario] = &[
        Scenario::Viewer,
        Scenario::Contacts,
        Scenario::Inbox,
        Scenario::Send,
    ];

    /// Its name on the command line and in the results.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Viewer => "viewer",
            Scenario::Contacts => "contacts",
            Scenario::Inbox => "inbox",
            Scenario::Send => "send",
            Scenario::Fanout => "fanout",
            Scenario::Replay => "replay",
            Scenario::Webhooks => "webhooks",
            Scenario::Broadcast => "broadcast",
            Scenario::CallCampaign => "call-campaign",
            Scenario::Metrics => "metrics",
        }
    }

    /// Whether it is a websocket scenario (`live.rs`) rather than an HTTP load.
    pub fn is_live(self) -> bool {
        matches!(self, Scenario::Fanout | Scenario::Replay)
    }

    /// The concurrency levels it runs at unless `--concurrency` is given: one level for the
    /// read scenarios; the inbox also unloaded (one client: latency without queueing); `send`
    /// at 1, 8 and 64 clients.
    pub fn default_levels(self) -> Vec<usize> {
        match self {
            Scenario::Viewer | Scenario::Contacts => vec![32],
            Scenario::Inbox => vec![1, 32],
            Scenario::Send => vec![1, 8, 64],
            Scenario::Fanout
            | Scenario::Replay
            | Scenario::Webhooks
            | Scenario::Broadcast
            | Scenario::CallCampaign
            | Scenario::Metrics => Vec::new(),
        }
    }

    /// Its target.
    pub fn criterion(self) -> Criterion {
        match self {
            Scenario::Inbox => Criterion::Latency(1.5),
            _ => Criterion::Throughput(0.7),
        }
    }

    /// The requests of both sides. Both get the same body bytes, so the wire cost is equal; the
    /// plain handlers read the GraphQL variables from them where they need input.
    pub async fn plan(self, env: &Env) -> anyhow::Result<Plan> {
        let targets = |path: &'static str| {
            (
                Target::new(env.graphql, "/graphql", &env.owner_token),
                Target::new(env.plain, path, &env.owner_token),
            )
        };
        Ok(match self {
            Scenario::Viewer => {
                let (graphql, plain) = targets("/viewer");
                Plan {
                    graphql,
                    plain,
                    requests: Requests::Fixed(vec![graphql_body(
                        "{ viewer { user { id displayName email } } }",
                    )]),
                    writes: None,
                }
            }
            Scenario::Contacts => {
                let (graphql, plain) = targets("/contacts");
                Plan {
                    graphql,
                    plain,
                    requests: Requests::Fixed(vec![graphql_body(crate::contacts::QUERY)]),
                    writes: None,
                }
            }
            Scenario::Inbox => {
                let (graphql, plain) = targets("/inbox");
                let fixture = env.inbox.as_ref().context("the inbox was not seeded")?;
                let mut bodies = Vec::new();
                for (mut variables, second_page) in crate::inbox::variables(fixture)? {
                    if second_page {
                        // The first page's end cursor, as a client would have it.
                        let (status, answer) =
                            crate::load::send_once(&graphql, crate::inbox::body(&variables))
                                .await?;
                        let answer: serde_json::Value = serde_json::from_slice(&answer)
                            .with_context(|| format!("first page: {status}"))?;
                        let cursor =
                            answer["data"]["conversations"]["pageInfo"]["endCursor"].clone();
                        if !cursor.is_string() {
                            anyhow::bail!("no end cursor in the first page: {answer}");
                        }
                        variables["after"] = cursor;
                    }
                    bodies.push(crate::inbox::body(&variables));
                }
                Plan {
                    graphql,
                    plain,
                    requests: Requests::Fixed(bodies),
                    writes: None,
                }
            }
            Scenario::Send => {
                let (graphql, plain) = targets("/send");
                let fixture = env.inbox.as_ref().context("the inbox was not seeded")?;
                if fixture.send_conversations.is_empty() {
                    anyhow::bail!("no open SMS conversation to send to: seed more conversations");
                }
                let conversations = Arc::new(fixture.send_conversations.clone());
                Plan {
                    graphql,
                    plain,
                    requests: Requests::Generate {
                        body: crate::send::bodies(conversations.clone()),
                        check: crate::send::check(),
                    },
                    writes: Some(conversations),
                }
            }
            Scenario::Fanout
            | Scenario::Replay
            | Scenario::Webhooks
            | Scenario::Broadcast
            | Scenario::CallCampaign
            | Scenario::Metrics => {
                anyhow::bail!("{} is not an HTTP scenario", self.name())
            }
        })
    }
}

fn graphql_body(query: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "query": query }).to_string())
}

/// The plain handlers of all scenarios; the state is the server's database pool.
pub fn plain_routes() -> Router<DatabaseConnection> {
    Router::new()
        .route("/viewer", post(viewer))
        .route("/contacts", post(crate::contacts::handler))
        .route("/inbox", post(crate::inbox::handler))
        .route("/send", post(crate::send::handler))
}

/// The bearer token, read as the GraphQL handler reads it.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The caller of a reference request, authenticated as the server does (bearer token, one query),
/// or the `401` answer.
pub async fn authenticate(
    db: &DatabaseConnection,
    headers: &HeaderMap,
) -> Result<switchboard::auth::Principal, Response> {
    let Some(token) = bearer(headers) else {
        return Err(unauthenticated(
            "the Authorization header must be `Bearer <token>`",
        ));
    };
    switchboard::auth::authenticate(db, token)
        .await
        .map_err(|error| unauthenticated(&error.public_message()))
}

pub fn json_response(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

pub fn unauthenticated(message: &str) -> Response {
    let mut response = json_response(
        serde_json::json!({
            "errors": [{ "message": message, "extensions": { "code": "UNAUTHENTICATED" } }]
        })
        .to_string()
        .into_bytes(),
    );
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response
}

#[derive(Serialize)]
struct Data<T> {
    data: T,
}

#[derive(Serialize)]
struct ViewerData<'a> {
    viewer: ViewerOut<'a>,
}

#[derive(Serialize)]
struct ViewerOut<'a> {
    user: UserOut<'a>,
}

/// Fields in the order of the GraphQL selection, so the bytes match too.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserOut<'a> {
    id: String,
    display_name: &'a str,
    email: &'a str,
}

/// `POST /viewer`: what `{ viewer { user { id displayName email } } }` does, without GraphQL.
async fn viewer(
    State(db): State<DatabaseConnection>,
    headers: HeaderMap,
    _body: Bytes,
) -> Response {
    let principal = match authenticate(&db, &headers).await {
        Ok(principal) => principal,
        Err(response) => return response,
    };
    let user = &principal.user;
    let body = Data {
        data: ViewerData {
            viewer: ViewerOut {
                user: UserOut {
                    id: switchboard::graphql::relay::encode_id("User", user.id).0,
                    display_name: &user.display_name,
                    email: &user.email,
                },
            },
        },
    };
    match serde_json::to_vec(&body) {
        Ok(bytes) => json_response(bytes),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
