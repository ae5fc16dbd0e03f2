//! Channels, conversations and messages: the inbox's core tables. Details that hang off them
//! (participants, tags, attribute values, reads, reactions, delivery history, attachments, notes)
//! are in the next inbox migration.

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index, set_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Channels {
    Table,
    Id,
    OrgId,
    ChannelType,
    Name,
    Address,
    Capabilities,
    Provider,
    ProviderSettings,
    SendRatePerSecond,
    DefaultQueueId,
    BusinessHours,
    AutoReply,
    Status,
    ArchivedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
    OrgId,
    Number,
    ChannelId,
    ChannelType,
    Kind,
    Direction,
    Subject,
    Status,
    PendingUntil,
    CloseReason,
    ClosedAt,
    RequesterId,
    AssigneeId,
    AssignedAt,
    QueueId,
    QueuedAt,
    Priority,
    PriorityRank,
    ParentId,
    LinkType,
    RatingType,
    RatingScore,
    RatingComment,
    RatedAt,
    FirstResponseAt,
    LastMessageAt,
    LastMessageId,
    WaitingSince,
    WaitingKey,
    MessageCount,
    ArchivedAt,
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
    AuthorKind,
    AuthorContactId,
    AuthorUserId,
    Direction,
    TextBody,
    HtmlBody,
    EmailSubject,
    FromAddress,
    ToAddresses,
    CcAddresses,
    BccAddresses,
    ExternalId,
    DeliveryStatus,
    DeliveryReason,
    ScheduledAt,
    EditedAt,
    RedactedAt,
    RemovedAt,
    AnonymizedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ConversationCounters {
    Table,
    OrgId,
    LastNumber,
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

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Queues {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Channels as H;
        use Conversations as C;
        use Messages as M;
        manager
            .create_table(
                Table::create()
                    .table(H::Table)
                    .col(uuid(H::Id).primary_key())
                    .col(uuid(H::OrgId))
                    .col(string(H::ChannelType))
                    .col(string(H::Name))
                    .col(string(H::Address))
                    .col(json(H::Capabilities))
                    .col(string(H::Provider))
                    .col(json(H::ProviderSettings))
                    .col(double(H::SendRatePerSecond))
                    .col(uuid_null(H::DefaultQueueId))
                    .col(json_null(H::BusinessHours))
                    .col(text_null(H::AutoReply))
                    .col(string(H::Status))
                    .col(timestamp_with_time_zone_null(H::ArchivedAt))
                    .col(timestamp_with_time_zone(H::CreatedAt))
                    .col(timestamp_with_time_zone(H::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (H::Table, H::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (H::Table, H::DefaultQueueId),
                        (Queues::Table, Queues::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_channels_org_type_address",
            H::Table,
            vec![
                H::OrgId.into_iden(),
                H::ChannelType.into_iden(),
                H::Address.into_iden(),
            ],
            true,
        )
        .await?;
        index(
            manager,
            "ix_channels_org_created",
            H::Table,
            vec![
                H::OrgId.into_iden(),
                H::CreatedAt.into_iden(),
                H::Id.into_iden(),
            ],
            false,
        )
        .await?;
        index(
            manager,
            "ix_channels_default_queue",
            H::Table,
            vec![H::DefaultQueueId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(C::Table)
                    .col(uuid(C::Id).primary_key())
                    .col(uuid(C::OrgId))
                    .col(big_integer(C::Number))
                    .col(uuid_null(C::ChannelId))
                    .col(string(C::ChannelType))
                    .col(string(C::Kind))
                    .col(string(C::Direction))
                    .col(text_null(C::Subject))
                    .col(string(C::Status))
                    .col(timestamp_with_time_zone_null(C::PendingUntil))
                    .col(string_null(C::CloseReason))
                    .col(timestamp_with_time_zone_null(C::ClosedAt))
                    .col(uuid(C::RequesterId))
                    .col(uuid_null(C::AssigneeId))
                    .col(timestamp_with_time_zone_null(C::AssignedAt))
                    .col(uuid_null(C::QueueId))
                    .col(timestamp_with_time_zone_null(C::QueuedAt))
                    .col(string(C::Priority))
                    .col(small_integer(C::PriorityRank))
                    .col(uuid_null(C::ParentId))
                    .col(string_null(C::LinkType))
                    .col(string_null(C::RatingType))
                    .col(integer_null(C::RatingScore))
                    .col(text_null(C::RatingComment))
                    .col(timestamp_with_time_zone_null(C::RatedAt))
                    .col(timestamp_with_time_zone_null(C::FirstResponseAt))
                    .col(timestamp_with_time_zone(C::LastMessageAt))
                    .col(uuid_null(C::LastMessageId))
                    .col(timestamp_with_time_zone_null(C::WaitingSince))
                    .col(timestamp_with_time_zone(C::WaitingKey))
                    .col(big_integer(C::MessageCount))
                    .col(timestamp_with_time_zone_null(C::ArchivedAt))
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
                    .foreign_key(&mut set_null((C::Table, C::ChannelId), (H::Table, H::Id)))
                    .foreign_key(&mut set_null(
                        (C::Table, C::AssigneeId),
                        (Users::Table, Users::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (C::Table, C::QueueId),
                        (Queues::Table, Queues::Id),
                    ))
                    .foreign_key(&mut set_null((C::Table, C::ParentId), (C::Table, C::Id)))
                    .to_owned(),
            )
            .await?;
        let conversation_indexes: [(&str, Vec<DynIden>, bool); 11] = [
            (
                "ux_conversations_org_number",
                vec![C::OrgId.into_iden(), C::Number.into_iden()],
                true,
            ),
            (
                "ix_conversations_org_last_message",
                vec![
                    C::OrgId.into_iden(),
                    C::LastMessageAt.into_iden(),
                    C::Id.into_iden(),
                ],
                false,
            ),
            (
                "ix_conversations_org_status_last_message",
                vec![
                    C::OrgId.into_iden(),
                    C::Status.into_iden(),
                    C::LastMessageAt.into_iden(),
                    C::Id.into_iden(),
                ],
                false,
            ),
            (
                "ix_conversations_org_created",
                vec![
                    C::OrgId.into_iden(),
                    C::CreatedAt.into_iden(),
                    C::Id.into_iden(),
                ],
                false,
            ),
            (
                "ix_conversations_org_priority",
                vec![
                    C::OrgId.into_iden(),
                    C::PriorityRank.into_iden(),
                    C::Id.into_iden(),
                ],
                false,
            ),
            (
                "ix_conversations_org_waiting",
                vec![
                    C::OrgId.into_iden(),
                    C::WaitingKey.into_iden(),
                    C::Id.into_iden(),
                ],
                false,
            ),
            (
                "ix_conversations_assignee_status",
                vec![C::AssigneeId.into_iden(), C::Status.into_iden()],
                false,
            ),
            (
                "ix_conversations_queue_status",
                vec![C::QueueId.into_iden(), C::Status.into_iden()],
                false,
            ),
            (
                "ix_conversations_requester_status",
                vec![C::RequesterId.into_iden(), C::Status.into_iden()],
                false,
            ),
            (
                "ix_conversations_channel",
                vec![C::ChannelId.into_iden()],
                false,
            ),
            (
                "ix_conversations_pending_until",
                vec![C::PendingUntil.into_iden()],
                false,
            ),
        ];
        for (name, columns, unique) in conversation_indexes {
            index(manager, name, C::Table, columns, unique).await?;
        }
        index(
            manager,
            "ix_conversations_parent",
            C::Table,
            vec![C::ParentId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ConversationCounters::Table)
                    .col(uuid(ConversationCounters::OrgId).primary_key())
                    .col(big_integer(ConversationCounters::LastNumber))
                    .foreign_key(&mut cascade(
                        (ConversationCounters::Table, ConversationCounters::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(M::Table)
                    .col(uuid(M::Id).primary_key())
                    .col(uuid(M::OrgId))
                    .col(uuid(M::ConversationId))
                    .col(string(M::AuthorKind))
                    .col(uuid_null(M::AuthorContactId))
                    .col(uuid_null(M::AuthorUserId))
                    .col(string(M::Direction))
                    .col(text_null(M::TextBody))
                    .col(text_null(M::HtmlBody))
                    .col(text_null(M::EmailSubject))
                    .col(string_null(M::FromAddress))
                    .col(json_null(M::ToAddresses))
                    .col(json_null(M::CcAddresses))
                    .col(json_null(M::BccAddresses))
                    .col(string_null(M::ExternalId))
                    .col(string(M::DeliveryStatus))
                    .col(text_null(M::DeliveryReason))
                    .col(timestamp_with_time_zone_null(M::ScheduledAt))
                    .col(timestamp_with_time_zone_null(M::EditedAt))
                    .col(timestamp_with_time_zone_null(M::RedactedAt))
                    .col(timestamp_with_time_zone_null(M::RemovedAt))
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
                    .foreign_key(&mut set_null(
                        (M::Table, M::AuthorContactId),
                        (Contacts::Table, Contacts::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (M::Table, M::AuthorUserId),
                        (Users::Table, Users::Id),
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
        index(
            manager,
            "ix_messages_author_user",
            M::Table,
            vec![M::AuthorUserId.into_iden()],
            false,
        )
        .await?;
        index(
            manager,
            "ux_messages_org_external_id",
            M::Table,
            vec![M::OrgId.into_iden(), M::ExternalId.into_iden()],
            true,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Messages::Table.into_iden(),
            ConversationCounters::Table.into_iden(),
            Conversations::Table.into_iden(),
            Channels::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
