//! Presence expiry per server instance instead of per connection: an instance renews one row
//! (`presence_instances`) on each heartbeat rather than every connection it holds (10,000
//! connections meant rewriting 10,000 rows and their expiry index every 20 seconds). A
//! connection ends when its instance's row expires.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PresenceInstances {
    Table,
    Id,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum PresenceConnections {
    Table,
    InstanceId,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PresenceInstances::Table)
                    .col(uuid(PresenceInstances::Id).primary_key())
                    .col(timestamp_with_time_zone(PresenceInstances::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_presence_instances_expires")
                    .table(PresenceInstances::Table)
                    .col(PresenceInstances::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        // The instances holding connections now, each expiring when its last renewal does.
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(PresenceInstances::Table)
                    .columns([PresenceInstances::Id, PresenceInstances::ExpiresAt])
                    .select_from(
                        Query::select()
                            .column(PresenceConnections::InstanceId)
                            .expr(Expr::col(PresenceConnections::ExpiresAt).max())
                            .from(PresenceConnections::Table)
                            .group_by_col(PresenceConnections::InstanceId)
                            .to_owned(),
                    )
                    .map_err(|e| DbErr::Migration(e.to_string()))?
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ix_presence_connections_expires")
                    .table(PresenceConnections::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(PresenceConnections::Table)
                    .drop_column(PresenceConnections::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Connections take their instance's expiry (or expire at once without one).
        manager
            .alter_table(
                Table::alter()
                    .table(PresenceConnections::Table)
                    .add_column(
                        timestamp_with_time_zone(PresenceConnections::ExpiresAt)
                            .default(Expr::current_timestamp()),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(PresenceConnections::Table)
                    .value(
                        PresenceConnections::ExpiresAt,
                        Expr::expr(
                            Query::select()
                                .column(PresenceInstances::ExpiresAt)
                                .from(PresenceInstances::Table)
                                .and_where(
                                    Expr::col((PresenceInstances::Table, PresenceInstances::Id))
                                        .equals((
                                            PresenceConnections::Table,
                                            PresenceConnections::InstanceId,
                                        )),
                                )
                                .take(),
                        ),
                    )
                    .and_where(
                        Expr::col(PresenceConnections::InstanceId).in_subquery(
                            Query::select()
                                .column(PresenceInstances::Id)
                                .from(PresenceInstances::Table)
                                .take(),
                        ),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_presence_connections_expires")
                    .table(PresenceConnections::Table)
                    .col(PresenceConnections::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(PresenceInstances::Table).to_owned())
            .await
    }
}
