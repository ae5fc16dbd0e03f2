//! One error type with two faces: rich inside (the cause, for the log), and outside a chosen message
//! with `extensions.code`. `AppError` deliberately does not implement `Display`, so it can only become
//! a GraphQL error through the conversion below, never through async-graphql's blanket `Display`
//! conversion that would copy internal text to the client.

use std::borrow::Cow;

use async_graphql::{ErrorExtensions, Value};
use sea_orm::DbErr;

/// Result of service calls.
pub type AppResult<T> = Result<T, AppError>;

/// Machine-readable code of a user error (validation or business rule) in a mutation payload.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserErrorCode {
    /// The value is malformed or not allowed.
    Invalid,
    /// A required value is missing or empty.
    Required,
    /// The value must be unique and is already used.
    Taken,
    /// The value is shorter than allowed.
    TooShort,
    /// The value is longer than allowed.
    TooLong,
    /// The referenced object does not exist or is not visible to the caller.
    NotFound,
    /// The object is not in a state that allows the action.
    InvalidState,
    /// Related objects block the action (e.g. open conversations); it may succeed with `force`.
    Conflict,
    /// The credentials do not match.
    InvalidCredentials,
    /// Several objects match and the input does not say which one is meant.
    Ambiguous,
    /// The caller's role does not allow this change.
    Forbidden,
    /// A capacity or count limit is reached (e.g. a room is full).
    LimitExceeded,
}

/// A validation or business-rule failure on one input field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path to the input field, e.g. `["input", "email"]`.
    pub field: Vec<String>,
    /// Human-readable explanation.
    pub message: String,
    /// Machine-readable code.
    pub code: UserErrorCode,
}

impl FieldError {
    /// An error on `input.<field>`.
    pub fn new(field: &str, code: UserErrorCode, message: impl Into<String>) -> Self {
        let mut path = vec!["input".to_string()];
        path.extend(
            field
                .split('.')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        Self {
            field: path,
            message: message.into(),
            code,
        }
    }
}

/// Every failure a service or resolver can report.
#[derive(Clone, Debug)]
pub enum AppError {
    /// No valid credentials.
    Unauthenticated(Cow<'static, str>),
    /// Authenticated, but the role does not allow it.
    Forbidden(Cow<'static, str>),
    /// The object does not exist in the caller's organization.
    NotFound(Cow<'static, str>),
    /// Malformed argument (bad id, bad cursor, page size out of range).
    BadUserInput(String),
    /// Conflicts with the current state.
    Conflict(String),
    /// Validation or business-rule failures: returned as `userErrors` in mutation payloads.
    Validation(Vec<FieldError>),
    /// Over the rate limit.
    RateLimited {
        /// Seconds until enough budget is back.
        retry_after_secs: u64,
    },
    /// Over a query limit (depth, cost, aliases, root fields, batch size).
    QueryTooComplex(String),
    /// Took longer than the execution timeout.
    Timeout,
    /// A fault; the text is logged, never shown.
    Internal(String),
}

impl AppError {
    /// The field errors of a validation failure, so that several checks can report together; any
    /// other failure comes back as the error.
    pub fn into_field_errors(self) -> AppResult<Vec<FieldError>> {
        match self {
            AppError::Validation(errors) => Ok(errors),
            other => Err(other),
        }
    }

    /// A validation failure on one field.
    pub fn invalid(field: &str, code: UserErrorCode, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, code, message)])
    }

    /// A fault with a cause for the log.
    pub fn internal(cause: impl std::fmt::Debug) -> Self {
        Self::Internal(format!("{cause:?}"))
    }

    /// The code clients see in `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadUserInput(_) | Self::Validation(_) => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::QueryTooComplex(_) => "QUERY_TOO_COMPLEX",
            Self::Timeout => "TIMEOUT",
            Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// The message clients see.
    pub fn public_message(&self) -> String {
        match self {
            Self::Unauthenticated(m) | Self::Forbidden(m) => m.to_string(),
            Self::NotFound(what) => format!("{what} not found"),
            Self::BadUserInput(m) | Self::Conflict(m) | Self::QueryTooComplex(m) => m.clone(),
            Self::Validation(errors) => errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            Self::RateLimited { retry_after_secs } => {
                format!("rate limit exceeded; retry after {retry_after_secs} s")
            }
            Self::Timeout => "the operation took longer than the execution timeout".into(),
            Self::Internal(_) => "internal server error".into(),
        }
    }

    /// Converts to the client-facing error, logging the cause of faults in the current span (which
    /// carries the request id).
    pub fn into_graphql(self) -> async_graphql::Error {
        if let Self::Internal(cause) = &self {
            tracing::error!(cause = %cause, "internal error");
        }
        let code = self.code();
        let mut error = async_graphql::Error::new(self.public_message())
            .extend_with(|_, e| e.set("code", code));
        if let Self::RateLimited { retry_after_secs } = self {
            error = error.extend_with(|_, e| e.set("retryAfter", Value::from(retry_after_secs)));
        }
        error
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(error: AppError) -> Self {
        error.into_graphql()
    }
}

impl From<DbErr> for AppError {
    fn from(error: DbErr) -> Self {
        Self::internal(error)
    }
}
