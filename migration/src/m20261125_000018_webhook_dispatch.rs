//! Webhook dispatch from the event log: each subscription remembers up to which event it has
//! turned events into deliveries, and which job dispatches them; deliveries waiting to be sent
//! are found in event order.

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookSubscriptions {
    Table,
    CursorSeq,
    DispatchJobId,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    SubscriptionId,
    Status,
    EventSeq,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookSubscriptions::Table)
                    .add_column(big_integer(WebhookSubscriptions::CursorSeq).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookSubscriptions::Table)
                    .add_column(uuid_null(WebhookSubscriptions::DispatchJobId))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_webhook_deliveries_pending",
            WebhookDeliveries::Table,
            vec![
                WebhookDeliveries::SubscriptionId.into_iden(),
                WebhookDeliveries::Status.into_iden(),
                WebhookDeliveries::EventSeq.into_iden(),
            ],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_webhook_deliveries_pending")
                    .table(WebhookDeliveries::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            WebhookSubscriptions::DispatchJobId.into_iden(),
            WebhookSubscriptions::CursorSeq.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(WebhookSubscriptions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
