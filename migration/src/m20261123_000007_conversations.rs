//! Conversations and messages: the core columns that contact anonymization already relies on. The
//! inbox (channels, assignment, queues, participants, delivery, search) extends these tables.

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
    OrgId,
    Number,
    RequesterId,
    ChannelType,
    Subject,
    Status,
    CloseReason,
    ClosedAt,
    AnonymizedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    OrgId,
    ConversationId,
    AuthorContactId,
    AuthorUserId,
    Direction,
    TextBody,
    HtmlBody,
    AnonymizedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Conversations as C;
        use Messages as M;
        manager
            .create_table(
                Table::create()
                    .table(C::Table)
                    .col(uuid(C::Id).primary_key())
                    .col(uuid(C::OrgId))
                    .col(big_integer(C::Number))
                    .col(uuid(C::RequesterId))
                    .col(string(C::ChannelType))
                    .col(text_null(C::Subject))
                    .col(string(C::Status))
                    .col(string_null(C::CloseReason))
                    .col(timestamp_with_time_zone_null(C::ClosedAt))
                    .col(timestamp_with_time_zone_null(C::AnonymizedAt))
                    .col(timestamp_with_time_zone(C::CreatedAt))
                    .col(timestamp_with_time_zone(C::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (C::Table, C::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (C::Table, C::RequesterId),
                        (Contacts::Table, Contacts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_conversations_org_number",
            C::Table,
            vec![C::OrgId.into_iden(), C::Number.into_iden()],
            true,
        )
        .await?;
        index(
            manager,
            "ix_conversations_requester_status",
            C::Table,
            vec![C::RequesterId.into_iden(), C::Status.into_iden()],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(M::Table)
                    .col(uuid(M::Id).primary_key())
                    .col(uuid(M::OrgId))
                    .col(uuid(M::ConversationId))
                    .col(uuid_null(M::AuthorContactId))
                    .col(uuid_null(M::AuthorUserId))
                    .col(string(M::Direction))
                    .col(text_null(M::TextBody))
                    .col(text_null(M::HtmlBody))
                    .col(timestamp_with_time_zone_null(M::AnonymizedAt))
                    .col(timestamp_with_time_zone(M::CreatedAt))
                    .col(timestamp_with_time_zone(M::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (M::Table, M::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (M::Table, M::ConversationId),
                        (C::Table, C::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_messages_conversation_created",
            M::Table,
            vec![
                M::ConversationId.into_iden(),
                M::CreatedAt.into_iden(),
                M::Id.into_iden(),
            ],
            false,
        )
        .await?;
        index(
            manager,
            "ix_messages_author_contact",
            M::Table,
            vec![M::AuthorContactId.into_iden()],
            false,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Messages::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Conversations::Table).to_owned())
            .await
    }
}
