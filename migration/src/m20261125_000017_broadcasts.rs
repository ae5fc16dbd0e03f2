//! Broadcasts: bulk sends to contacts, groups and segments on one channel, and their recipients
//! (one row per contact of the audience, with the message sent to them or why they were skipped).

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index, set_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Broadcasts {
    Table,
    Id,
    OrgId,
    Name,
    ChannelId,
    TemplateId,
    Subject,
    Text,
    Html,
    Variables,
    Audience,
    Status,
    ScheduledAt,
    StartedAt,
    PausedAt,
    CompletedAt,
    CancelledAt,
    FailedAt,
    FailureReason,
    ExpandedAt,
    JobToken,
    CursorContactId,
    AudienceSize,
    Recipients,
    Queued,
    Skipped,
    Sent,
    Delivered,
    Failed,
    Cancelled,
    Replied,
    ProgressAt,
    ProgressPending,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BroadcastRecipients {
    Table,
    Id,
    OrgId,
    BroadcastId,
    ContactId,
    ConversationId,
    MessageId,
    Status,
    Reason,
    Detail,
    RepliedAt,
    CreatedAt,
    UpdatedAt,
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

#[derive(DeriveIden)]
enum Channels {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Templates {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Broadcasts::Table)
                    .col(uuid(Broadcasts::Id).primary_key())
                    .col(uuid(Broadcasts::OrgId))
                    .col(string(Broadcasts::Name))
                    .col(uuid_null(Broadcasts::ChannelId))
                    .col(uuid_null(Broadcasts::TemplateId))
                    .col(text_null(Broadcasts::Subject))
                    .col(text_null(Broadcasts::Text))
                    .col(text_null(Broadcasts::Html))
                    .col(json(Broadcasts::Variables))
                    .col(json(Broadcasts::Audience))
                    .col(string(Broadcasts::Status))
                    .col(timestamp_with_time_zone_null(Broadcasts::ScheduledAt))
                    .col(timestamp_with_time_zone_null(Broadcasts::StartedAt))
                    .col(timestamp_with_time_zone_null(Broadcasts::PausedAt))
                    .col(timestamp_with_time_zone_null(Broadcasts::CompletedAt))
                    .col(timestamp_with_time_zone_null(Broadcasts::CancelledAt))
                    .col(timestamp_with_time_zone_null(Broadcasts::FailedAt))
                    .col(text_null(Broadcasts::FailureReason))
                    .col(timestamp_with_time_zone_null(Broadcasts::ExpandedAt))
                    .col(uuid_null(Broadcasts::JobToken))
                    .col(uuid_null(Broadcasts::CursorContactId))
                    .col(big_integer(Broadcasts::AudienceSize).default(0))
                    .col(big_integer(Broadcasts::Recipients).default(0))
                    .col(big_integer(Broadcasts::Queued).default(0))
                    .col(big_integer(Broadcasts::Skipped).default(0))
                    .col(big_integer(Broadcasts::Sent).default(0))
                    .col(big_integer(Broadcasts::Delivered).default(0))
                    .col(big_integer(Broadcasts::Failed).default(0))
                    .col(big_integer(Broadcasts::Cancelled).default(0))
                    .col(big_integer(Broadcasts::Replied).default(0))
                    .col(timestamp_with_time_zone_null(Broadcasts::ProgressAt))
                    .col(boolean(Broadcasts::ProgressPending).default(false))
                    .col(uuid_null(Broadcasts::CreatedBy))
                    .col(timestamp_with_time_zone(Broadcasts::CreatedAt))
                    .col(timestamp_with_time_zone(Broadcasts::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (Broadcasts::Table, Broadcasts::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (Broadcasts::Table, Broadcasts::ChannelId),
                        (Channels::Table, Channels::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (Broadcasts::Table, Broadcasts::TemplateId),
                        (Templates::Table, Templates::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (Broadcasts::Table, Broadcasts::CreatedBy),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // The list, newest first, optionally by status or channel.
        index(
            manager,
            "ix_broadcasts_org",
            Broadcasts::Table,
            vec![Broadcasts::OrgId.into_iden(), Broadcasts::Id.into_iden()],
            false,
        )
        .await?;
        index(
            manager,
            "ix_broadcasts_status",
            Broadcasts::Table,
            vec![
                Broadcasts::OrgId.into_iden(),
                Broadcasts::Status.into_iden(),
                Broadcasts::Id.into_iden(),
            ],
            false,
        )
        .await?;
        index(
            manager,
            "ix_broadcasts_channel",
            Broadcasts::Table,
            vec![
                Broadcasts::ChannelId.into_iden(),
                Broadcasts::Id.into_iden(),
            ],
            false,
        )
        .await?;
        for (name, column) in [
            ("ix_broadcasts_template", Broadcasts::TemplateId),
            ("ix_broadcasts_created_by", Broadcasts::CreatedBy),
        ] {
            index(
                manager,
                name,
                Broadcasts::Table,
                vec![column.into_iden()],
                false,
            )
            .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(BroadcastRecipients::Table)
                    .col(uuid(BroadcastRecipients::Id).primary_key())
                    .col(uuid(BroadcastRecipients::OrgId))
                    .col(uuid(BroadcastRecipients::BroadcastId))
                    .col(uuid(BroadcastRecipients::ContactId))
                    .col(uuid_null(BroadcastRecipients::ConversationId))
                    .col(uuid_null(BroadcastRecipients::MessageId))
                    .col(string(BroadcastRecipients::Status))
                    .col(string_null(BroadcastRecipients::Reason))
                    .col(text_null(BroadcastRecipients::Detail))
                    .col(timestamp_with_time_zone_null(
                        BroadcastRecipients::RepliedAt,
                    ))
                    .col(timestamp_with_time_zone(BroadcastRecipients::CreatedAt))
                    .col(timestamp_with_time_zone(BroadcastRecipients::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (BroadcastRecipients::Table, BroadcastRecipients::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (BroadcastRecipients::Table, BroadcastRecipients::BroadcastId),
                        (Broadcasts::Table, Broadcasts::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (BroadcastRecipients::Table, BroadcastRecipients::ContactId),
                        (Contacts::Table, Contacts::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (
                            BroadcastRecipients::Table,
                            BroadcastRecipients::ConversationId,
                        ),
                        (Conversations::Table, Conversations::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (BroadcastRecipients::Table, BroadcastRecipients::MessageId),
                        (Messages::Table, Messages::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // One row per contact and broadcast (expansion is idempotent); the recipients list by
        // status; the delivery hook by message, the reply hook by conversation.
        index(
            manager,
            "ux_broadcast_recipients_contact",
            BroadcastRecipients::Table,
            vec![
                BroadcastRecipients::BroadcastId.into_iden(),
                BroadcastRecipients::ContactId.into_iden(),
            ],
            true,
        )
        .await?;
        index(
            manager,
            "ix_broadcast_recipients_status",
            BroadcastRecipients::Table,
            vec![
                BroadcastRecipients::BroadcastId.into_iden(),
                BroadcastRecipients::Status.into_iden(),
                BroadcastRecipients::Id.into_iden(),
            ],
            false,
        )
        .await?;
        index(
            manager,
            "ix_broadcast_recipients_list",
            BroadcastRecipients::Table,
            vec![
                BroadcastRecipients::BroadcastId.into_iden(),
                BroadcastRecipients::Id.into_iden(),
            ],
            false,
        )
        .await?;
        for (name, column) in [
            (
                "ix_broadcast_recipients_message",
                BroadcastRecipients::MessageId,
            ),
            (
                "ix_broadcast_recipients_conversation",
                BroadcastRecipients::ConversationId,
            ),
            (
                "ix_broadcast_recipients_contact",
                BroadcastRecipients::ContactId,
            ),
            ("ix_broadcast_recipients_org", BroadcastRecipients::OrgId),
        ] {
            index(
                manager,
                name,
                BroadcastRecipients::Table,
                vec![column.into_iden()],
                false,
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BroadcastRecipients::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Broadcasts::Table).to_owned())
            .await
    }
}
