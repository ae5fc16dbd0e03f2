//! Anonymization requests: tracked erasure of a contact's (later a conversation's or message's)
//! personal data.

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AnonymizationRequests {
    Table,
    Id,
    OrgId,
    TargetType,
    TargetId,
    Status,
    Force,
    RequestedBy,
    RequestedAt,
    ProcessedAt,
    ClosedConversations,
    AnonymizedConversations,
    ErasedMessages,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use AnonymizationRequests as A;
        manager
            .create_table(
                Table::create()
                    .table(A::Table)
                    .col(uuid(A::Id).primary_key())
                    .col(uuid(A::OrgId))
                    .col(string(A::TargetType))
                    .col(uuid(A::TargetId))
                    .col(string(A::Status))
                    .col(boolean(A::Force))
                    .col(uuid_null(A::RequestedBy))
                    .col(timestamp_with_time_zone(A::RequestedAt))
                    .col(timestamp_with_time_zone_null(A::ProcessedAt))
                    .col(integer(A::ClosedConversations))
                    .col(integer(A::AnonymizedConversations))
                    .col(integer(A::ErasedMessages))
                    .foreign_key(&mut cascade(
                        (A::Table, A::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_anonymization_requests_target",
            A::Table,
            vec![
                A::OrgId.into_iden(),
                A::TargetType.into_iden(),
                A::TargetId.into_iden(),
            ],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AnonymizationRequests::Table).to_owned())
            .await
    }
}
