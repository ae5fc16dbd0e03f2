//! `POST /ingest/{channelId}`: the channel's global id (as `Channel.id` shows it) or its raw
//! UUID; headers `webhook-id`, `webhook-timestamp` (Unix seconds, within 5 minutes of the
//! server's clock) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
//! keyed with the channel's ingest secret; several space-separated signatures are allowed, one
//! must match). Answers JSON:
//!
//! - `404 NOT_FOUND`: no such channel (checked first), or a status update for an unknown
//!   provider message id.
//! - `401 UNAUTHENTICATED`: a signature header missing, a stale timestamp, no matching
//!   signature, or a channel without an ingest secret.
//! - `400 BAD_REQUEST`: the body is not a JSON object.
//! - `422` with the field in `extensions.field` and a code such as `REQUIRED` or `INVALID`:
//!   fields missing or wrong.
//! - `201` for a recorded inbound message, `200` for a repeat (`"result": "DUPLICATE"`) and
//!   for status updates (`"result": "UPDATED"` or `"IGNORED"` with the reason).
//! - Call reports (`"type": "call"`) answer like status updates (`201` for a new inbound call);
//!   room reports (`"type": "room"`, a room of the channel's organization failing, or one of
//!   its recordings) answer `200` with `roomId`, `state`, `recordingId`, `recordingStatus`.
//!
//! Nothing is stored unless the answer is `200` or `201`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use entity::channel;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use uuid::Uuid;

use super::service::{self, Outcome};
use crate::AppState;
use crate::error::AppError;
use crate::graphql::relay::{decode_id, encode_id};
use crate::http::error_response;
use crate::webhooks::signing::{self, VerifyError};

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn unauthenticated(message: &str) -> Response {
    error_response(StatusCode::UNAUTHORIZED, message, "UNAUTHENTICATED")
}

/// The JSON answer of a failed request.
fn failure(error: AppError) -> Response {
    match error {
        AppError::Validation(errors) => {
            let errors: Vec<Value> = errors
                .iter()
                .map(|e| {
                    let code = async_graphql::InputType::to_value(&e.code).to_string();
                    let field = e
                        .field
                        .iter()
                        .skip(1)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(".");
                    json!({ "message": e.message, "extensions": { "code": code, "field": field } })
                })
                .collect();
            json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "errors": errors }),
            )
        }
        AppError::BadUserInput(message) => {
            error_response(StatusCode::BAD_REQUEST, &message, "BAD_REQUEST")
        }
        error @ AppError::NotFound(_) => {
            error_response(StatusCode::NOT_FOUND, &error.public_message(), "NOT_FOUND")
        }
        other => {
            if let AppError::Internal(cause) = &other {
                tracing::error!(cause = %cause, "ingest failed");
            }
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal server error",
                "INTERNAL_SERVER_ERROR",
            )
        }
    }
}

fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
}

/// Handles one ingest request (see the module documentation).
pub async fn ingest(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let not_found = || error_response(StatusCode::NOT_FOUND, "no such channel", "NOT_FOUND");
    let Some(id) = decode_id(&channel_id, "Channel")
        .ok()
        .or_else(|| Uuid::parse_str(&channel_id).ok())
    else {
        return not_found();
    };
    let channel = match channel::Entity::find_by_id(id).one(&state.db).await {
        Ok(Some(channel)) => channel,
        Ok(None) => return not_found(),
        Err(error) => return failure(error.into()),
    };
    let (Some(webhook_id), Some(timestamp), Some(signatures)) = (
        header_value(&headers, "webhook-id"),
        header_value(&headers, "webhook-timestamp"),
        header_value(&headers, "webhook-signature"),
    ) else {
        return unauthenticated(
            "sign the request: webhook-id, webhook-timestamp and webhook-signature headers are required",
        );
    };
    let Some(secret) = channel.ingest_secret.as_deref() else {
        return unauthenticated(
            "the channel has no ingest secret yet: an admin gives it one with rotateChannelIngestSecret",
        );
    };
    let now = Utc::now();
    if let Err(error) = signing::verify(
        secret,
        webhook_id,
        timestamp,
        signatures,
        &body,
        now.timestamp(),
    ) {
        return unauthenticated(match error {
            VerifyError::BadTimestamp => "webhook-timestamp must be Unix seconds",
            VerifyError::Stale => {
                "webhook-timestamp is more than 5 minutes away from the server's clock"
            }
            VerifyError::NoMatch => {
                "no webhook-signature matches the body and the channel's secret"
            }
        });
    }
    let request = match service::parse(&body, now) {
        Ok(request) => request,
        Err(error) => return failure(error),
    };
    match service::handle(
        &state.db,
        &state.config,
        &channel,
        request,
        state.clock.now(),
    )
    .await
    {
        Ok(Outcome::Received(received)) => {
            let message = &received.message;
            let status = if received.duplicate {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            json_response(
                status,
                json!({
                    "result": if received.duplicate { "DUPLICATE" } else { "CREATED" },
                    "messageId": encode_id("Message", message.id),
                    "conversationId": encode_id("Conversation", message.conversation_id),
                    "contactId": message.author_contact_id.map(|id| encode_id("Contact", id)),
                    "newConversation": received.new_conversation,
                    "newContact": received.new_contact,
                }),
            )
        }
        Ok(Outcome::Status(change)) => json_response(
            StatusCode::OK,
            json!({
                "result": if change.ignored.is_some() { "IGNORED" } else { "UPDATED" },
                "messageId": encode_id("Message", change.message.id),
                "status": change.message.delivery_status,
                "reason": change.ignored,
            }),
        ),
        Ok(Outcome::Call(reported)) => json_response(
            if reported.new_call {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            json!({
                "result": if reported.new_call {
                    "CREATED"
                } else if reported.ignored.is_some() {
                    "IGNORED"
                } else {
                    "UPDATED"
                },
                "callId": encode_id("Call", reported.call.id),
                "conversationId": reported.call.conversation_id.map(|id| encode_id("Conversation", id)),
                "contactId": reported.call.contact_id.map(|id| encode_id("Contact", id)),
                "status": reported.call.status,
                "reason": reported.ignored,
            }),
        ),
        Ok(Outcome::Room(reported)) => json_response(
            StatusCode::OK,
            json!({
                "result": if reported.ignored.is_some() { "IGNORED" } else { "UPDATED" },
                "roomId": encode_id("Room", reported.room.id),
                "state": reported.room.state,
                "recordingId": reported.recording.as_ref().map(|r| encode_id("RoomRecording", r.id)),
                "recordingStatus": reported.recording.as_ref().map(|r| r.status.clone()),
                "reason": reported.ignored,
            }),
        ),
        Err(error) => failure(error),
    }
}
