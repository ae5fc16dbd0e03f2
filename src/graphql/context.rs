//! Per-request context: the database, the caller, and the request's dataloaders (created per
//! request on first use, never shared between callers, always scoped to the caller's
//! organization).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Principal;
use crate::error::{AppError, AppResult};
use crate::tenancy::{self, OrgScoped};

/// How long a dataloader waits to collect keys before it queries. The library default (1 ms) costs
/// more than the batched query itself; this is enough for sibling resolvers to enqueue their keys.
pub const BATCH_DELAY: Duration = Duration::from_micros(200);

/// A dataloader's loader that reads one organization's rows. Any module can define one and get it
/// per request with [`RequestCtx::loader`].
pub trait ScopedLoader: Send + Sync + Sized + 'static {
    /// The loader for `org_id`'s rows.
    fn new(db: DatabaseConnection, org_id: Uuid) -> Self;
}

/// What every resolver can reach.
pub struct RequestCtx {
    /// Shared application state.
    pub state: AppState,
    /// The authenticated caller, if any.
    pub principal: Option<Principal>,
    loaders: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl RequestCtx {
    /// A context for one request.
    pub fn new(state: AppState, principal: Option<Principal>) -> Self {
        Self {
            state,
            principal,
            loaders: Mutex::new(HashMap::new()),
        }
    }

    /// The database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.state.db
    }

    /// The caller, or `UNAUTHENTICATED`.
    pub fn principal(&self) -> AppResult<&Principal> {
        self.principal.as_ref().ok_or_else(|| {
            AppError::Unauthenticated(
                "authentication required: send `Authorization: Bearer <token>`".into(),
            )
        })
    }

    /// Drops every loader and what it loaded: a websocket connection keeps one context for its
    /// lifetime, and each subscription event must be resolved from current data.
    pub fn forget_loaded(&self) {
        match self.loaders.lock() {
            Ok(mut loaders) => loaders.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
        }
    }

    /// This request's dataloader of `L`, scoped to the caller's organization (created on first
    /// use).
    pub fn loader<L>(&self) -> AppResult<Arc<RequestLoader<L>>>
    where
        L: ScopedLoader,
    {
        let org_id = self.principal()?.org_id;
        let mut loaders = match self.loaders.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        let entry = loaders.entry(TypeId::of::<L>()).or_insert_with(|| {
            let loader = DataLoader::with_cache(
                L::new(self.state.db.clone(), org_id),
                tokio::spawn,
                HashMapCache::default(),
            )
            .delay(BATCH_DELAY);
            Arc::new(loader)
        });
        entry
            .clone()
            .downcast::<RequestLoader<L>>()
            .map_err(|_| AppError::internal("dataloader type mismatch"))
    }

    /// Loads one row of `E` by id in the caller's organization through this request's loader.
    pub async fn load<E>(&self, id: Uuid) -> AppResult<Option<E::Model>>
    where
        E: OrgScoped + Send + Sync + 'static,
        E::Model: Clone + Send + Sync + 'static,
    {
        self.loader::<ById<E>>()?.load_one(id).await
    }
}

/// A request's dataloader: batches by a short delay and caches what it loaded (or was fed) for the
/// rest of the request. List resolvers feed it a whole page's nested data up front, which makes
/// the statement count independent of page size whatever the scheduling.
pub type RequestLoader<L> = DataLoader<L, HashMapCache>;

/// Whether a connection resolver's selection asks for `path` (e.g. `["tags"]` or
/// `["customAttributes", "definition"]`) on its nodes, through `nodes` or `edges.node`: list
/// resolvers prefetch that data for the whole page when it does.
pub fn page_selects(ctx: &Context<'_>, path: &[&str]) -> bool {
    let look = ctx.look_ahead();
    [look.field("nodes"), look.field("edges").field("node")]
        .into_iter()
        .any(|node| path.iter().fold(node, |at, field| at.field(field)).exists())
}

/// Shortcuts on the async-graphql context.
pub trait ContextExt {
    /// The request context.
    fn app(&self) -> &RequestCtx;
}

impl ContextExt for Context<'_> {
    fn app(&self) -> &RequestCtx {
        // Every request executed by this server carries a RequestCtx (see http::graphql).
        self.data_unchecked::<Arc<RequestCtx>>()
    }
}

/// Loads rows of `E` by id within one organization.
pub struct ById<E> {
    db: DatabaseConnection,
    org_id: Uuid,
    entity: PhantomData<fn() -> E>,
}

impl<E: OrgScoped + Send + Sync + 'static> ScopedLoader for ById<E> {
    fn new(db: DatabaseConnection, org_id: Uuid) -> Self {
        Self {
            db,
            org_id,
            entity: PhantomData,
        }
    }
}

impl<E> Loader<Uuid> for ById<E>
where
    E: OrgScoped + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
{
    type Value = E::Model;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, E::Model>, AppError> {
        let rows = tenancy::by_ids::<E>(self.org_id, keys.iter().copied())
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|m| (E::model_id(&m), m)).collect())
    }
}

/// Defines a per-request loader `$name` of `$value` per id that calls `$load(db, org_id, keys)`.
macro_rules! batch_loader {
    ($name:ident, $value:ty, $load:path, $doc:literal) => {
        #[doc = $doc]
        pub struct $name {
            db: sea_orm::DatabaseConnection,
            org_id: uuid::Uuid,
        }

        impl $crate::graphql::context::ScopedLoader for $name {
            fn new(db: sea_orm::DatabaseConnection, org_id: uuid::Uuid) -> Self {
                Self { db, org_id }
            }
        }

        impl async_graphql::dataloader::Loader<uuid::Uuid> for $name {
            type Value = $value;
            type Error = $crate::error::AppError;

            async fn load(
                &self,
                keys: &[uuid::Uuid],
            ) -> Result<std::collections::HashMap<uuid::Uuid, $value>, $crate::error::AppError>
            {
                $load(&self.db, self.org_id, keys).await
            }
        }
    };
}

pub(crate) use batch_loader;
