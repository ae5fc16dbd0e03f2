//! Webhook subscriptions, their deliveries (one per subscription and event) and each delivery's
//! attempts.

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index, set_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookSubscriptions {
    Table,
    Id,
    OrgId,
    Name,
    Url,
    EventTypes,
    Secret,
    AuthKind,
    AuthUsername,
    AuthSecret,
    Headers,
    Enabled,
    DisabledReason,
    DisabledAt,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    OrgId,
    SubscriptionId,
    EventId,
    EventSeq,
    EventType,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LastStatusCode,
    LastError,
    CreatedAt,
    UpdatedAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum WebhookAttempts {
    Table,
    Id,
    OrgId,
    DeliveryId,
    AttemptedAt,
    StatusCode,
    LatencyMs,
    ResponseSnippet,
    Error,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookSubscriptions::Table)
                    .col(uuid(WebhookSubscriptions::Id).primary_key())
                    .col(uuid(WebhookSubscriptions::OrgId))
                    .col(string(WebhookSubscriptions::Name))
                    .col(text(WebhookSubscriptions::Url))
                    .col(json(WebhookSubscriptions::EventTypes))
                    .col(string(WebhookSubscriptions::Secret))
                    .col(string(WebhookSubscriptions::AuthKind))
                    .col(string_null(WebhookSubscriptions::AuthUsername))
                    .col(string_null(WebhookSubscriptions::AuthSecret))
                    .col(json(WebhookSubscriptions::Headers))
                    .col(boolean(WebhookSubscriptions::Enabled))
                    .col(text_null(WebhookSubscriptions::DisabledReason))
                    .col(timestamp_with_time_zone_null(
                        WebhookSubscriptions::DisabledAt,
                    ))
                    .col(uuid_null(WebhookSubscriptions::CreatedBy))
                    .col(timestamp_with_time_zone(WebhookSubscriptions::CreatedAt))
                    .col(timestamp_with_time_zone(WebhookSubscriptions::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (WebhookSubscriptions::Table, WebhookSubscriptions::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (WebhookSubscriptions::Table, WebhookSubscriptions::CreatedBy),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(uuid(WebhookDeliveries::Id).primary_key())
                    .col(uuid(WebhookDeliveries::OrgId))
                    .col(uuid(WebhookDeliveries::SubscriptionId))
                    .col(uuid_null(WebhookDeliveries::EventId))
                    .col(big_integer_null(WebhookDeliveries::EventSeq))
                    .col(string(WebhookDeliveries::EventType))
                    .col(json(WebhookDeliveries::Payload))
                    .col(string(WebhookDeliveries::Status))
                    .col(integer(WebhookDeliveries::Attempts))
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::NextAttemptAt,
                    ))
                    .col(integer_null(WebhookDeliveries::LastStatusCode))
                    .col(text_null(WebhookDeliveries::LastError))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone(WebhookDeliveries::UpdatedAt))
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::DeliveredAt,
                    ))
                    .foreign_key(&mut cascade(
                        (WebhookDeliveries::Table, WebhookDeliveries::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (WebhookDeliveries::Table, WebhookDeliveries::SubscriptionId),
                        (WebhookSubscriptions::Table, WebhookSubscriptions::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .col(uuid(WebhookAttempts::Id).primary_key())
                    .col(uuid(WebhookAttempts::OrgId))
                    .col(uuid(WebhookAttempts::DeliveryId))
                    .col(timestamp_with_time_zone(WebhookAttempts::AttemptedAt))
                    .col(integer_null(WebhookAttempts::StatusCode))
                    .col(integer(WebhookAttempts::LatencyMs))
                    .col(text_null(WebhookAttempts::ResponseSnippet))
                    .col(text_null(WebhookAttempts::Error))
                    .foreign_key(&mut cascade(
                        (WebhookAttempts::Table, WebhookAttempts::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (WebhookAttempts::Table, WebhookAttempts::DeliveryId),
                        (WebhookDeliveries::Table, WebhookDeliveries::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, table, columns) in [
            (
                "ix_webhook_subscriptions_org",
                WebhookSubscriptions::Table.into_iden(),
                vec![
                    WebhookSubscriptions::OrgId.into_iden(),
                    WebhookSubscriptions::CreatedAt.into_iden(),
                ],
            ),
            (
                "ix_webhook_subscriptions_created_by",
                WebhookSubscriptions::Table.into_iden(),
                vec![WebhookSubscriptions::CreatedBy.into_iden()],
            ),
            (
                "ix_webhook_deliveries_subscription",
                WebhookDeliveries::Table.into_iden(),
                vec![
                    WebhookDeliveries::SubscriptionId.into_iden(),
                    WebhookDeliveries::CreatedAt.into_iden(),
                ],
            ),
            (
                "ix_webhook_deliveries_type",
                WebhookDeliveries::Table.into_iden(),
                vec![
                    WebhookDeliveries::SubscriptionId.into_iden(),
                    WebhookDeliveries::EventType.into_iden(),
                    WebhookDeliveries::CreatedAt.into_iden(),
                ],
            ),
            (
                "ix_webhook_deliveries_org",
                WebhookDeliveries::Table.into_iden(),
                vec![WebhookDeliveries::OrgId.into_iden()],
            ),
            (
                "ix_webhook_attempts_delivery",
                WebhookAttempts::Table.into_iden(),
                vec![
                    WebhookAttempts::DeliveryId.into_iden(),
                    WebhookAttempts::AttemptedAt.into_iden(),
                ],
            ),
            (
                "ix_webhook_attempts_org",
                WebhookAttempts::Table.into_iden(),
                vec![WebhookAttempts::OrgId.into_iden()],
            ),
        ] {
            index(manager, name, table, columns, false).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WebhookAttempts::Table.into_iden(),
            WebhookDeliveries::Table.into_iden(),
            WebhookSubscriptions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
