//! The agent's leg of click-to-call and callback calls: the number or endpoint rung first, and
//! when the agent answered it (only then is the contact dialled).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Calls {
    Table,
    AgentTo,
    AgentAnsweredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Calls::Table)
                    .add_column(string_null(Calls::AgentTo))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Calls::Table)
                    .add_column(timestamp_with_time_zone_null(Calls::AgentAnsweredAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Calls::AgentAnsweredAt, Calls::AgentTo] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Calls::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
