//! Query limits and request bookkeeping, as one async-graphql extension:
//!
//! - a shared cache of parsed documents, so repeated documents are parsed once;
//! - depth (introspection subtrees not counted, so GraphiQL keeps working), aliases and root fields,
//!   checked on the parsed document before validation;
//! - cost (async-graphql's complexity, connections costing their page size) after validation;
//! - the per-token cost budget per minute (rate limit);
//! - a last guard that replaces any error without a code by `INTERNAL_SERVER_ERROR`.
//!
//! What happened is written into the request's [`RequestMeta`], from which the HTTP layer picks its
//! status code. A rejected operation never reaches execution.

use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{
    ErrorExtensionValues, Positioned, Response, ServerError, ServerResult, ValidationResult,
    Variables,
};
use lru::LruCache;

use crate::config::Config;
use crate::error::AppError;
use crate::ratelimit::{RateLimiter, RateStatus};

/// Cost of a connection field: its page size times the cost of one item, plus one.
pub fn connection_cost(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    let size = first
        .or(last)
        .unwrap_or(crate::graphql::relay::DEFAULT_PAGE_SIZE)
        .clamp(1, *crate::graphql::relay::PAGE_SIZE_RANGE.end());
    1 + size as usize * child_complexity.max(1)
}

/// How far a request got, for the HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Stage {
    /// Not parsed yet.
    #[default]
    Received,
    /// The document did not parse.
    ParseFailed,
    /// The document was refused before execution (validation or limits).
    Rejected,
    /// Over the rate limit.
    RateLimited,
    /// A mutation or subscription sent with GET.
    MethodNotAllowed,
    /// Execution started.
    Executing,
}

/// Per-request facts shared between the HTTP handler and this extension.
#[derive(Debug, Default)]
pub struct RequestMeta {
    inner: Mutex<MetaInner>,
}

#[derive(Debug, Default, Clone)]
struct MetaInner {
    stage: Stage,
    operation_type: Option<OperationType>,
    operation_name: Option<String>,
    get_request: bool,
    rate_key: Option<String>,
    rate: Option<RateStatus>,
    retry_after: Option<u64>,
}

/// A snapshot of [`RequestMeta`].
#[derive(Debug, Clone)]
pub struct MetaSnapshot {
    /// How far the request got.
    pub stage: Stage,
    /// `query`, `mutation` or `subscription`, once known.
    pub operation_type: Option<OperationType>,
    /// The budget left, when rate limiting applies.
    pub rate: Option<RateStatus>,
    /// Seconds until retry, when rate limited.
    pub retry_after: Option<u64>,
}

impl RequestMeta {
    /// Meta for one operation. `rate_key` names the budget (token or client address) it spends.
    pub fn new(
        operation_name: Option<String>,
        get_request: bool,
        rate_key: Option<String>,
    ) -> Self {
        Self {
            inner: Mutex::new(MetaInner {
                operation_name,
                get_request,
                rate_key,
                ..Default::default()
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut MetaInner) -> R) -> R {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// What happened so far.
    pub fn snapshot(&self) -> MetaSnapshot {
        self.with(|m| MetaSnapshot {
            stage: m.stage,
            operation_type: m.operation_type,
            rate: m.rate,
            retry_after: m.retry_after,
        })
    }
}

/// Builds the per-request extension; holds what is shared between requests.
pub struct Limits {
    config: Arc<Config>,
    documents: Arc<Mutex<LruCache<String, ExecutableDocument>>>,
    rate_limiter: Arc<RateLimiter>,
}

impl Limits {
    /// Limits from the configuration, with a shared rate limiter.
    pub fn new(config: Arc<Config>, rate_limiter: Arc<RateLimiter>) -> Self {
        Self {
            config,
            documents: Arc::new(Mutex::new(LruCache::new(
                NonZeroUsize::new(512).unwrap_or(NonZeroUsize::MIN),
            ))),
            rate_limiter,
        }
    }
}

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension {
            config: self.config.clone(),
            documents: self.documents.clone(),
            rate_limiter: self.rate_limiter.clone(),
        })
    }
}

struct LimitsExtension {
    config: Arc<Config>,
    documents: Arc<Mutex<LruCache<String, ExecutableDocument>>>,
    rate_limiter: Arc<RateLimiter>,
}

/// A request-level error with a code.
pub fn coded_error(message: impl Into<String>, code: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

fn app_error(error: AppError) -> ServerError {
    let mut server_error = coded_error(error.public_message(), error.code());
    if let AppError::RateLimited { retry_after_secs } = error
        && let Some(ext) = server_error.extensions.as_mut()
    {
        ext.set("retryAfter", retry_after_secs);
    }
    server_error
}

fn has_code(error: &ServerError) -> bool {
    error
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some())
}

/// Shape of the selected operation, counted with fragments expanded.
#[derive(Debug, Default)]
struct Shape {
    depth: usize,
    aliases: usize,
    root_fields: usize,
    visited: usize,
}

/// Selections (fields, spreads, inline fragments) visited, with fragments expanded, before a
/// document is refused outright. Validation and execution expand fragments too, so a document
/// that expands beyond this (a "fragment bomb") is refused before either runs.
const MAX_VISITED_SELECTIONS: usize = 5_000;

/// Walks a selection set with fragments expanded, counting depth (outside introspection), aliases,
/// root fields and selections; stops once past [`MAX_VISITED_SELECTIONS`].
fn walk(
    doc: &ExecutableDocument,
    set: &SelectionSet,
    depth: Option<usize>,
    shape: &mut Shape,
    fragments_on_path: &mut HashSet<String>,
) {
    for selection in &set.items {
        shape.visited += 1;
        if shape.visited > MAX_VISITED_SELECTIONS {
            return;
        }
        match &selection.node {
            Selection::Field(field) => {
                let field = &field.node;
                if field.alias.is_some() {
                    shape.aliases += 1;
                }
                if depth == Some(0) {
                    shape.root_fields += 1;
                }
                let name = field.name.node.as_str();
                // Introspection is walked (its aliases and size count) but its depth does not.
                let inner = match depth {
                    Some(_) if name == "__schema" || name == "__type" => None,
                    Some(d) => {
                        shape.depth = shape.depth.max(d + 1);
                        Some(d + 1)
                    }
                    None => None,
                };
                walk(
                    doc,
                    &field.selection_set.node,
                    inner,
                    shape,
                    fragments_on_path,
                );
            }
            Selection::InlineFragment(fragment) => {
                walk(
                    doc,
                    &fragment.node.selection_set.node,
                    depth,
                    shape,
                    fragments_on_path,
                );
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.to_string();
                if let Some(fragment) = doc.fragments.get(spread.node.fragment_name.node.as_str())
                    && fragments_on_path.insert(name.clone())
                {
                    walk(
                        doc,
                        &fragment.node.selection_set.node,
                        depth,
                        shape,
                        fragments_on_path,
                    );
                    fragments_on_path.remove(&name);
                }
            }
        }
    }
}

/// Whether a parse failure is about nesting (the parser's recursion or stack limit).
fn is_nesting_error(error: &async_graphql::parser::Error) -> bool {
    match error {
        async_graphql::parser::Error::RecursionLimitExceeded => true,
        async_graphql::parser::Error::Syntax { message, .. } => message.contains("stack limit"),
        _ => false,
    }
}

fn selected_operation<'a>(
    doc: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a Positioned<async_graphql::parser::types::OperationDefinition>> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(map), Some(name)) => map.get(name),
        (DocumentOperations::Multiple(map), None) if map.len() == 1 => map.values().next(),
        _ => None,
    }
}

impl LimitsExtension {
    fn meta<'a>(&self, ctx: &ExtensionContext<'a>) -> Option<&'a RequestMeta> {
        ctx.data_opt::<Arc<RequestMeta>>().map(|m| m.as_ref())
    }

    fn check_shape(
        &self,
        doc: &ExecutableDocument,
        meta: Option<&RequestMeta>,
    ) -> ServerResult<()> {
        let operation_name = meta.and_then(|m| m.with(|i| i.operation_name.clone()));
        // A missing or unknown operation is reported by validation, after the walk below.
        let operation = selected_operation(doc, operation_name.as_deref());
        if let (Some(meta), Some(operation)) = (meta, operation) {
            let ty = operation.node.ty;
            let refused = meta.with(|m| {
                m.operation_type = Some(ty);
                m.get_request && ty != OperationType::Query
            });
            if refused {
                meta.with(|m| m.stage = Stage::MethodNotAllowed);
                return Err(coded_error(
                    "only queries can be sent with GET; send mutations with POST",
                    "METHOD_NOT_ALLOWED",
                ));
            }
        }
        // Every fragment definition and every operation is walked: validation expands all of them.
        let mut shape = Shape::default();
        for fragment in doc.fragments.values() {
            let mut fragment_shape = Shape {
                visited: shape.visited,
                ..Shape::default()
            };
            walk(
                doc,
                &fragment.node.selection_set.node,
                None,
                &mut fragment_shape,
                &mut HashSet::new(),
            );
            shape.visited = fragment_shape.visited;
        }
        for (_, op) in doc.operations.iter() {
            let mut op_shape = Shape {
                visited: shape.visited,
                ..Shape::default()
            };
            walk(
                doc,
                &op.node.selection_set.node,
                Some(0),
                &mut op_shape,
                &mut HashSet::new(),
            );
            shape.visited = op_shape.visited;
            shape.depth = shape.depth.max(op_shape.depth);
            shape.aliases += op_shape.aliases;
            if operation.is_some_and(|selected| std::ptr::eq(op, selected)) {
                shape.root_fields = op_shape.root_fields;
            }
        }
        let too_complex = |message: String| {
            if let Some(meta) = meta {
                meta.with(|m| m.stage = Stage::Rejected);
            }
            Err(app_error(AppError::QueryTooComplex(message)))
        };
        let config = &self.config;
        if shape.visited > MAX_VISITED_SELECTIONS {
            return too_complex(format!(
                "query expands to more than {MAX_VISITED_SELECTIONS} selections"
            ));
        }
        if shape.depth > config.max_depth {
            return too_complex(format!(
                "query is nested {} levels deep; the limit is {}",
                shape.depth, config.max_depth
            ));
        }
        if shape.aliases > config.max_aliases {
            return too_complex(format!(
                "query uses {} aliases; the limit is {}",
                shape.aliases, config.max_aliases
            ));
        }
        if shape.root_fields > config.max_root_fields {
            return too_complex(format!(
                "operation selects {} root fields; the limit is {}",
                shape.root_fields, config.max_root_fields
            ));
        }
        Ok(())
    }

    fn cached(&self, query: &str) -> Option<ExecutableDocument> {
        let mut cache = self.documents.lock().ok()?;
        cache.get(query).cloned()
    }

    fn remember(&self, query: &str, doc: &ExecutableDocument) {
        if let Ok(mut cache) = self.documents.lock() {
            cache.put(query.to_string(), doc.clone());
        }
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for LimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let meta = self.meta(ctx);
        // Parsed here rather than by `next`: async-graphql's own post-parse check expands fragments
        // without bound, so the bounded walk in `check_shape` must come first.
        let _ = (next, variables);
        let doc = match self.cached(query) {
            Some(doc) => doc,
            None => match async_graphql::parser::parse_query(query) {
                Ok(doc) => doc,
                Err(error) if is_nesting_error(&error) => {
                    if let Some(meta) = meta {
                        meta.with(|m| m.stage = Stage::Rejected);
                    }
                    return Err(app_error(AppError::QueryTooComplex(format!(
                        "query is nested deeper than the limit of {}",
                        self.config.max_depth
                    ))));
                }
                Err(error) => {
                    if let Some(meta) = meta {
                        meta.with(|m| m.stage = Stage::ParseFailed);
                    }
                    let mut error = ServerError::from(error);
                    let mut ext = ErrorExtensionValues::default();
                    ext.set("code", "GRAPHQL_PARSE_FAILED");
                    error.extensions = Some(ext);
                    return Err(error);
                }
            },
        };
        self.check_shape(&doc, meta)?;
        self.remember(query, &doc);
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let meta = self.meta(ctx);
        let reject = |stage: Stage| {
            if let Some(meta) = meta {
                meta.with(|m| m.stage = stage);
            }
        };
        let result = next.run(ctx).await.map_err(|errors| {
            reject(Stage::Rejected);
            errors
                .into_iter()
                .map(|mut e| {
                    if !has_code(&e) {
                        let mut ext = ErrorExtensionValues::default();
                        ext.set("code", "GRAPHQL_VALIDATION_FAILED");
                        e.extensions = Some(ext);
                    }
                    e
                })
                .collect::<Vec<_>>()
        })?;
        if result.complexity > self.config.max_complexity {
            reject(Stage::Rejected);
            return Err(vec![app_error(AppError::QueryTooComplex(format!(
                "query costs {}; the limit is {}",
                result.complexity, self.config.max_complexity
            )))]);
        }
        if let Some(meta) = meta
            && let Some(key) = meta.with(|m| m.rate_key.clone())
        {
            let cost = result.complexity.max(1) as u64;
            if cost > self.rate_limiter.per_minute() {
                reject(Stage::Rejected);
                return Err(vec![app_error(AppError::QueryTooComplex(format!(
                    "query costs {cost}, more than the rate limit of {} per minute",
                    self.rate_limiter.per_minute()
                )))]);
            }
            match self.rate_limiter.spend(&key, cost) {
                Ok(status) => meta.with(|m| m.rate = Some(status)),
                Err((status, retry_after_secs)) => {
                    meta.with(|m| {
                        m.rate = Some(status);
                        m.retry_after = Some(retry_after_secs);
                        m.stage = Stage::RateLimited;
                    });
                    return Err(vec![app_error(AppError::RateLimited { retry_after_secs })]);
                }
            }
        }
        Ok(result)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let Some(meta) = self.meta(ctx) {
            meta.with(|m| m.stage = Stage::Executing);
        }
        let mut response = next.run(ctx, operation_name).await;
        for error in &mut response.errors {
            if !has_code(error) {
                if error.message.starts_with("Failed to parse")
                    || error.message.starts_with("Invalid value")
                {
                    let mut ext = ErrorExtensionValues::default();
                    ext.set("code", "BAD_USER_INPUT");
                    error.extensions = Some(ext);
                } else {
                    tracing::error!(cause = %error.message, path = ?error.path, "uncoded resolver error");
                    error.message = "internal server error".into();
                    let mut ext = ErrorExtensionValues::default();
                    ext.set("code", "INTERNAL_SERVER_ERROR");
                    error.extensions = Some(ext);
                }
            }
        }
        response
    }
}
