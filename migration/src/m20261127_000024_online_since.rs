//! When a user's current online stretch began, so going offline can measure it
//! (the `agent_online_time` metric).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UserPresence {
    Table,
    OnlineSince,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(UserPresence::Table)
                    .add_column(timestamp_with_time_zone_null(UserPresence::OnlineSince))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(UserPresence::Table)
                    .drop_column(UserPresence::OnlineSince)
                    .to_owned(),
            )
            .await
    }
}
