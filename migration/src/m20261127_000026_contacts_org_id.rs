//! An index of contacts by organization and id: a broadcast reads its audience in id order, a
//! batch at a time after the last id it read. Without it SQLite walked every contact of the
//! organization (by another `org_id` index), looked each row up and sorted them all for every
//! batch of 200: a 100,000-contact audience cost 100,000 rows per batch.
//!
//! And conversations by requester and channel: a broadcast batch looks up each recipient's open
//! conversation on its channel. With only single-column indexes the planner could take the
//! channel's (every conversation of the channel) for `requester_id = ? AND channel_id = ?`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The indexes, each with the statement that drops it.
const INDEXES: [(&str, &str); 2] = [
    (
        "CREATE INDEX ix_contacts_org_id ON contacts (org_id, id)",
        "DROP INDEX ix_contacts_org_id",
    ),
    (
        "CREATE INDEX ix_conversations_requester_channel \
         ON conversations (requester_id, channel_id, status)",
        "DROP INDEX ix_conversations_requester_channel",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (create, _) in INDEXES {
            manager.get_connection().execute_unprepared(create).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (_, drop) in INDEXES.iter().rev() {
            manager.get_connection().execute_unprepared(drop).await?;
        }
        Ok(())
    }
}
