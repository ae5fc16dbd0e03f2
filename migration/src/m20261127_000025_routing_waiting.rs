//! A partial index of the conversations routing looks for: queued, unassigned and not archived,
//! by status and the time they were queued. The routing sweep reads them oldest first; without
//! it the planner walked every unassigned open conversation (a broadcast's 100,000 outbound
//! conversations, which are in no queue) on every sweep. The index's condition has no bound
//! values, so both databases can use it for the sweep's prepared statement.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX ix_conversations_routing_waiting ON conversations (status, queued_at) \
                 WHERE queue_id IS NOT NULL AND assignee_id IS NULL AND archived_at IS NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX ix_conversations_routing_waiting")
            .await?;
        Ok(())
    }
}
