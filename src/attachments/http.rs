//! `GET /attachments/{id}`: streams an attachment to a user of its organization.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::io::ReaderStream;

use super::store::Store;
use crate::AppState;
use crate::auth::Permission;
use crate::error::AppError;
use crate::http::error_response;
use crate::http::graphql::{auth_failure, principal};
use crate::tenancy;

fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "attachment not found", "NOT_FOUND")
}

/// `Content-Disposition: attachment` with an ASCII fallback name and the UTF-8 name (RFC 6266).
pub fn content_disposition(filename: &str) -> String {
    let fallback: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// Streams the attachment `id` (its global id) to a user of the same organization: 401 without
/// valid credentials, 403 for roles that may not work conversations, 404 for unknown ids, other
/// organizations' attachments and attachments of removed messages.
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let principal = match principal(&state, &headers).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return auth_failure(
                &state,
                AppError::Unauthenticated(
                    "authentication required: send `Authorization: Bearer <token>`".into(),
                ),
            );
        }
        Err(error) => return auth_failure(&state, error),
    };
    if let Err(error) = principal.require(Permission::WorkConversations) {
        return error_response(StatusCode::FORBIDDEN, &error.public_message(), error.code());
    }
    let Ok(id) = crate::graphql::relay::decode_id(&id, "Attachment") else {
        return not_found();
    };
    let found = tenancy::by_id::<entity::attachment::Entity>(principal.org_id, id)
        .one(&state.db)
        .await;
    let row = match found {
        Ok(Some(row)) => row,
        Ok(None) => return not_found(),
        Err(error) => return internal(error),
    };
    if let Some(message_id) = row.message_id {
        match tenancy::by_id::<entity::message::Entity>(principal.org_id, message_id)
            .one(&state.db)
            .await
        {
            Ok(Some(message)) if message.removed_at.is_none() => {}
            Ok(_) => return not_found(),
            Err(error) => return internal(error),
        }
    }
    let path = Store::new(&state.config.attachments_dir).path(&row.storage_key);
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "attachment file missing");
            return not_found();
        }
    };
    let mut response = Body::from_stream(ReaderStream::new(file)).into_response();
    let headers = response.headers_mut();
    let values = [
        (header::CONTENT_TYPE, row.content_type.clone()),
        (header::CONTENT_LENGTH, row.size_bytes.to_string()),
        (
            header::CONTENT_DISPOSITION,
            content_disposition(&row.filename),
        ),
        (header::ETAG, format!("\"{}\"", row.sha256)),
        (header::CACHE_CONTROL, "private, no-cache".into()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox".into(),
        ),
    ];
    for (name, value) in values {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

fn internal(error: sea_orm::DbErr) -> Response {
    let error = AppError::from(error);
    let (message, code) = (error.public_message(), error.code());
    let _ = error.into_graphql();
    error_response(StatusCode::INTERNAL_SERVER_ERROR, &message, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_quotes_and_encodes_names() {
        assert_eq!(
            content_disposition("report 1.pdf"),
            "attachment; filename=\"report 1.pdf\"; filename*=UTF-8''report%201.pdf"
        );
        assert_eq!(
            content_disposition("a\"b\u{e6}.txt"),
            "attachment; filename=\"a_b_.txt\"; filename*=UTF-8''a%22b%C3%A6.txt"
        );
    }
}
