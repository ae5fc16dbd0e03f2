//! Calls: one row per voice call leg a channel places or takes (inbound, click-to-call,
//! callbacks, campaign dials), and a per-minute rate on channels for price estimates.

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index, set_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Calls {
    Table,
    Id,
    OrgId,
    ChannelId,
    ConversationId,
    Kind,
    Direction,
    FromNumber,
    ToNumber,
    ContactId,
    UserId,
    QueueId,
    Status,
    OnHold,
    HoldStartedAt,
    HoldSeconds,
    CreatedAt,
    RingingAt,
    AnsweredAt,
    EndedAt,
    UpdatedAt,
    WaitSeconds,
    TalkSeconds,
    EndReason,
    Keypad,
    RecordingUrl,
    RecordingSeconds,
    Transcription,
    TranscriptionStatus,
    PriceMicros,
    ProviderCallId,
    CampaignId,
    CampaignReceiverId,
    CreatedBy,
}

#[derive(DeriveIden)]
enum Channels {
    Table,
    Id,
    CallRateMicros,
    CallCurrency,
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
enum Contacts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Queues {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            big_integer_null(Channels::CallRateMicros),
            string_null(Channels::CallCurrency),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Channels::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Calls::Table)
                    .col(uuid(Calls::Id).primary_key())
                    .col(uuid(Calls::OrgId))
                    .col(uuid(Calls::ChannelId))
                    .col(uuid_null(Calls::ConversationId))
                    .col(string(Calls::Kind))
                    .col(string(Calls::Direction))
                    .col(string(Calls::FromNumber))
                    .col(string(Calls::ToNumber))
                    .col(uuid_null(Calls::ContactId))
                    .col(uuid_null(Calls::UserId))
                    .col(uuid_null(Calls::QueueId))
                    .col(string(Calls::Status))
                    .col(boolean(Calls::OnHold))
                    .col(timestamp_with_time_zone_null(Calls::HoldStartedAt))
                    .col(integer(Calls::HoldSeconds))
                    .col(timestamp_with_time_zone(Calls::CreatedAt))
                    .col(timestamp_with_time_zone_null(Calls::RingingAt))
                    .col(timestamp_with_time_zone_null(Calls::AnsweredAt))
                    .col(timestamp_with_time_zone_null(Calls::EndedAt))
                    .col(timestamp_with_time_zone(Calls::UpdatedAt))
                    .col(integer_null(Calls::WaitSeconds))
                    .col(integer_null(Calls::TalkSeconds))
                    .col(string_null(Calls::EndReason))
                    .col(string_null(Calls::Keypad))
                    .col(string_null(Calls::RecordingUrl))
                    .col(integer_null(Calls::RecordingSeconds))
                    .col(text_null(Calls::Transcription))
                    .col(string_null(Calls::TranscriptionStatus))
                    .col(big_integer_null(Calls::PriceMicros))
                    .col(string_null(Calls::ProviderCallId))
                    .col(uuid_null(Calls::CampaignId))
                    .col(uuid_null(Calls::CampaignReceiverId))
                    .col(uuid_null(Calls::CreatedBy))
                    .foreign_key(&mut cascade(
                        (Calls::Table, Calls::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (Calls::Table, Calls::ChannelId),
                        (Channels::Table, Channels::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (Calls::Table, Calls::ConversationId),
                        (Conversations::Table, Conversations::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (Calls::Table, Calls::ContactId),
                        (Contacts::Table, Contacts::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (Calls::Table, Calls::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (Calls::Table, Calls::QueueId),
                        (Queues::Table, Queues::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (Calls::Table, Calls::CreatedBy),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            (
                "ix_calls_org_created",
                vec![Calls::OrgId.into_iden(), Calls::CreatedAt.into_iden()],
                false,
            ),
            (
                "ix_calls_org_status",
                vec![
                    Calls::OrgId.into_iden(),
                    Calls::Status.into_iden(),
                    Calls::CreatedAt.into_iden(),
                ],
                false,
            ),
            (
                "ix_calls_channel",
                vec![Calls::ChannelId.into_iden(), Calls::CreatedAt.into_iden()],
                false,
            ),
            (
                "ix_calls_conversation",
                vec![
                    Calls::ConversationId.into_iden(),
                    Calls::CreatedAt.into_iden(),
                ],
                false,
            ),
            (
                "ix_calls_contact",
                vec![Calls::ContactId.into_iden(), Calls::CreatedAt.into_iden()],
                false,
            ),
            (
                "ix_calls_user",
                vec![Calls::UserId.into_iden(), Calls::CreatedAt.into_iden()],
                false,
            ),
            (
                "ix_calls_queue",
                vec![Calls::QueueId.into_iden(), Calls::CreatedAt.into_iden()],
                false,
            ),
            (
                "ix_calls_created_by",
                vec![Calls::CreatedBy.into_iden()],
                false,
            ),
            (
                "ix_calls_campaign",
                vec![
                    Calls::CampaignId.into_iden(),
                    Calls::CampaignReceiverId.into_iden(),
                ],
                false,
            ),
            (
                "ux_calls_provider_call_id",
                vec![
                    Calls::ChannelId.into_iden(),
                    Calls::ProviderCallId.into_iden(),
                ],
                true,
            ),
        ] {
            index(manager, name, Calls::Table, columns, unique).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Calls::Table).to_owned())
            .await?;
        for column in [Channels::CallRateMicros, Channels::CallCurrency] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Channels::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
