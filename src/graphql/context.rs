//! Per-request context: the database, the caller, and the request's dataloaders (created per
//! request, never shared between callers).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Principal;
use crate::error::{AppError, AppResult};
use crate::tenancy::{self, OrgScoped};

/// How long a dataloader waits to collect keys before it queries. The library default (1 ms) costs
/// more than the batched query itself; this is enough for sibling resolvers to enqueue their keys.
const BATCH_DELAY: Duration = Duration::from_micros(100);

/// What every resolver can reach.
pub struct RequestCtx {
    /// Shared application state.
    pub state: AppState,
    /// The authenticated caller, if any.
    pub principal: Option<Principal>,
    loaders: OnceLock<Loaders>,
}

impl RequestCtx {
    /// A context for one request.
    pub fn new(state: AppState, principal: Option<Principal>) -> Self {
        Self {
            state,
            principal,
            loaders: OnceLock::new(),
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

    /// The request's dataloaders, scoped to the caller's organization.
    pub fn loaders(&self) -> AppResult<&Loaders> {
        let org_id = self.principal()?.org_id;
        Ok(self
            .loaders
            .get_or_init(|| Loaders::new(self.state.db.clone(), org_id)))
    }
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

/// A dataloader of `E` by id.
pub type ByIdLoader<E> = DataLoader<ById<E>>;

/// The dataloaders of one request.
pub struct Loaders {
    /// Users by id.
    pub users: ByIdLoader<entity::user::Entity>,
    /// API tokens by id.
    pub api_tokens: ByIdLoader<entity::api_token::Entity>,
    /// The organization (by id; only the caller's own is visible).
    pub organizations: ByIdLoader<entity::organization::Entity>,
}

fn by_id_loader<E>(db: &DatabaseConnection, org_id: Uuid) -> ByIdLoader<E>
where
    E: OrgScoped + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
{
    DataLoader::new(
        ById {
            db: db.clone(),
            org_id,
            entity: PhantomData,
        },
        tokio::spawn,
    )
    .delay(BATCH_DELAY)
}

impl Loaders {
    fn new(db: DatabaseConnection, org_id: Uuid) -> Self {
        Self {
            users: by_id_loader(&db, org_id),
            api_tokens: by_id_loader(&db, org_id),
            organizations: by_id_loader(&db, org_id),
        }
    }
}
