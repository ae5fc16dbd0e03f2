//! The scenarios. Each one is a GraphQL request and a plain axum handler that does the same work
//! (the same authentication, the same database reads) and answers the same JSON, so that the ratio
//! of their throughputs is the cost of the GraphQL layer.
//!
//! To add a scenario: add a variant to [`Scenario`] (and to [`Scenario::ALL`]), its plain handler to
//! [`plain_routes`], and its requests to [`Scenario::plan`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::ValueEnum;
use sea_orm::DatabaseConnection;
use serde::Serialize;

use crate::load::Target;
use crate::server::Env;

/// A benchmark scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// `{ viewer { user { id displayName email } } }`: authentication (one query) and the caller.
    Viewer,
    /// A page of 100 contacts with tags and custom attributes among `--contacts` contacts.
    Contacts,
}

/// The two sides of a scenario.
pub struct Plan {
    /// The request to the GraphQL server.
    pub graphql: Target,
    /// The equivalent request to the plain handler.
    pub plain: Target,
}

impl Scenario {
    /// Every scenario, in the order they run.
    pub const ALL: &'static [Scenario] = &[Scenario::Viewer, Scenario::Contacts];

    /// Its name on the command line and in the results.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Viewer => "viewer",
            Scenario::Contacts => "contacts",
        }
    }

    /// The requests of both sides. Both get the same body bytes, so the wire cost is equal; the
    /// plain handler reads the body and ignores it.
    pub fn plan(self, env: &Env) -> Plan {
        match self {
            Scenario::Viewer => {
                let body = graphql_body("{ viewer { user { id displayName email } } }");
                Plan {
                    graphql: Target::new(env.graphql, "/graphql", body.clone(), &env.owner_token),
                    plain: Target::new(env.plain, "/viewer", body, &env.owner_token),
                }
            }
            Scenario::Contacts => {
                let body = graphql_body(crate::contacts::QUERY);
                Plan {
                    graphql: Target::new(env.graphql, "/graphql", body.clone(), &env.owner_token),
                    plain: Target::new(env.plain, "/contacts", body, &env.owner_token),
                }
            }
        }
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
}

/// The bearer token, read as the GraphQL handler reads it.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
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
    let Some(token) = bearer(&headers) else {
        return unauthenticated("the Authorization header must be `Bearer <token>`");
    };
    let principal = match switchboard::auth::authenticate(&db, token).await {
        Ok(principal) => principal,
        Err(error) => return unauthenticated(&error.public_message()),
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
