//! Shapes shared by mutations: `userErrors`, payload plumbing, and bulk outcomes.

use std::borrow::Cow;

use async_graphql::{Enum, Object, OutputType, SimpleObject, TypeName};
use uuid::Uuid;

use crate::error::{AppError, AppResult, FieldError, UserErrorCode};
use crate::graphql::relay;

/// A validation or business-rule failure of a mutation's input. The mutation changed nothing.
#[derive(SimpleObject, Clone, Debug)]
pub struct UserError {
    /// Path to the offending input field, e.g. `["input", "email"]`.
    pub field: Vec<String>,
    /// Human-readable explanation.
    pub message: String,
    /// Machine-readable code.
    pub code: UserErrorCode,
}

impl From<FieldError> for UserError {
    fn from(e: FieldError) -> Self {
        Self {
            field: e.field,
            message: e.message,
            code: e.code,
        }
    }
}

/// Moves the errors of item `index` of the input list `list` (fields relative to the item,
/// `["input", …]`) under `input.<list>.<index>`.
pub fn under_item(list: &str, index: usize, errors: Vec<FieldError>) -> Vec<UserError> {
    errors
        .into_iter()
        .map(|mut e| {
            let rest = e.field.split_off(1.min(e.field.len()));
            e.field = vec!["input".into(), list.into(), index.to_string()];
            e.field.extend(rest);
            UserError::from(e)
        })
        .collect()
}

/// Splits a service result into the payload's value and `userErrors`; other failures become
/// top-level errors.
pub fn split<T>(result: AppResult<T>) -> async_graphql::Result<(Option<T>, Vec<UserError>)> {
    match result {
        Ok(value) => Ok((Some(value), Vec::new())),
        Err(AppError::Validation(errors)) => {
            Ok((None, errors.into_iter().map(UserError::from).collect()))
        }
        Err(other) => Err(other.into()),
    }
}

/// Decodes the global id in input field `field`; a malformed id or one of another type is a user
/// error on that field.
pub fn input_id(field: &str, id: &str, type_name: &str) -> AppResult<Uuid> {
    relay::decode_id(id, type_name)
        .map_err(|e| AppError::invalid(field, UserErrorCode::Invalid, e.public_message()))
}

/// What an item of a bulk mutation did.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkAction {
    /// The item created its object.
    Created,
    /// The item updated an existing object.
    Updated,
}

/// The outcome of one item of a bulk mutation, in input order.
pub struct BulkOutcome<N> {
    /// Position of the item in the input list.
    pub index: usize,
    /// What the item did, when it succeeded and the mutation says.
    pub action: Option<BulkAction>,
    /// The resulting object when the item succeeded.
    pub node: Option<N>,
    /// Why the item failed; empty on success.
    pub user_errors: Vec<UserError>,
}

impl<N> BulkOutcome<N> {
    /// The outcome of item `index` from its service result.
    pub fn from_result(index: usize, result: AppResult<N>) -> async_graphql::Result<Self> {
        let (node, user_errors) = split(result)?;
        Ok(Self {
            index,
            action: None,
            node,
            user_errors,
        })
    }
}

/// The outcome of one item of a bulk mutation, in input order.
#[Object(name_type)]
impl<N: OutputType> BulkOutcome<N> {
    /// Position of the item in the input list, from 0.
    async fn index(&self) -> usize {
        self.index
    }

    /// Whether the item succeeded.
    async fn ok(&self) -> bool {
        self.user_errors.is_empty()
    }

    /// What the item did (`CREATED` or `UPDATED`); null when it failed or the mutation's items
    /// can do only one thing.
    async fn action(&self) -> Option<BulkAction> {
        self.action
    }

    /// The resulting object when the item succeeded.
    async fn node(&self) -> Option<&N> {
        self.node.as_ref()
    }

    /// Why the item failed; empty on success.
    async fn user_errors(&self) -> &[UserError] {
        &self.user_errors
    }
}

impl<N: OutputType> TypeName for BulkOutcome<N> {
    fn type_name() -> Cow<'static, str> {
        format!("{}BulkOutcome", N::type_name()).into()
    }
}
