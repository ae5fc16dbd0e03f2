//! Call campaigns (voice broadcasts, RSVP calls, keypad surveys) and their receivers (one row per
//! phone number dialled, with its outcome).

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index, set_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CallCampaigns {
    Table,
    Id,
    OrgId,
    Name,
    Kind,
    ChannelId,
    AudioAttachmentId,
    TtsText,
    TtsLocale,
    Sources,
    StartTime,
    EndTime,
    ActiveFrom,
    ActiveTo,
    ActiveWeekdays,
    MaxRedials,
    RedialIntervalSeconds,
    ActionButtons,
    AcceptsWanted,
    Metadata,
    State,
    JobToken,
    StartedAt,
    HaltedAt,
    CompletedAt,
    CompletionReason,
    Receivers,
    Finished,
    Cancelled,
    Dialed,
    Answered,
    TotalDuration,
    Accepts,
    Declines,
    NoReplies,
    NotAnswered,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CallCampaignReceivers {
    Table,
    Id,
    OrgId,
    CampaignId,
    ContactId,
    PhoneNumber,
    Status,
    Answered,
    Reply,
    Keypad,
    DurationSeconds,
    DialCount,
    LatestCallId,
    LatestCallAt,
    NextDialAt,
    FinishedAt,
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
enum Attachments {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Calls {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use CallCampaigns as C;
        manager
            .create_table(
                Table::create()
                    .table(C::Table)
                    .col(uuid(C::Id).primary_key())
                    .col(uuid(C::OrgId))
                    .col(string(C::Name))
                    .col(string(C::Kind))
                    .col(uuid_null(C::ChannelId))
                    .col(uuid_null(C::AudioAttachmentId))
                    .col(text_null(C::TtsText))
                    .col(string_null(C::TtsLocale))
                    .col(json(C::Sources))
                    .col(timestamp_with_time_zone_null(C::StartTime))
                    .col(timestamp_with_time_zone(C::EndTime))
                    .col(integer(C::ActiveFrom))
                    .col(integer(C::ActiveTo))
                    .col(json(C::ActiveWeekdays))
                    .col(integer(C::MaxRedials))
                    .col(integer(C::RedialIntervalSeconds))
                    .col(json(C::ActionButtons))
                    .col(integer_null(C::AcceptsWanted))
                    .col(json(C::Metadata))
                    .col(string(C::State))
                    .col(uuid_null(C::JobToken))
                    .col(timestamp_with_time_zone_null(C::StartedAt))
                    .col(timestamp_with_time_zone_null(C::HaltedAt))
                    .col(timestamp_with_time_zone_null(C::CompletedAt))
                    .col(string_null(C::CompletionReason))
                    .col(big_integer(C::Receivers).default(0))
                    .col(big_integer(C::Finished).default(0))
                    .col(big_integer(C::Cancelled).default(0))
                    .col(big_integer(C::Dialed).default(0))
                    .col(big_integer(C::Answered).default(0))
                    .col(big_integer(C::TotalDuration).default(0))
                    .col(big_integer(C::Accepts).default(0))
                    .col(big_integer(C::Declines).default(0))
                    .col(big_integer(C::NoReplies).default(0))
                    .col(big_integer(C::NotAnswered).default(0))
                    .col(uuid_null(C::CreatedBy))
                    .col(timestamp_with_time_zone(C::CreatedAt))
                    .col(timestamp_with_time_zone(C::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (C::Table, C::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (C::Table, C::ChannelId),
                        (Channels::Table, Channels::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (C::Table, C::AudioAttachmentId),
                        (Attachments::Table, Attachments::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (C::Table, C::CreatedBy),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // The list, newest first, optionally by state.
        for (name, columns) in [
            (
                "ix_call_campaigns_org",
                vec![C::OrgId.into_iden(), C::Id.into_iden()],
            ),
            (
                "ix_call_campaigns_state",
                vec![
                    C::OrgId.into_iden(),
                    C::State.into_iden(),
                    C::Id.into_iden(),
                ],
            ),
            ("ix_call_campaigns_channel", vec![C::ChannelId.into_iden()]),
            (
                "ix_call_campaigns_audio",
                vec![C::AudioAttachmentId.into_iden()],
            ),
            (
                "ix_call_campaigns_created_by",
                vec![C::CreatedBy.into_iden()],
            ),
        ] {
            index(manager, name, C::Table, columns, false).await?;
        }

        use CallCampaignReceivers as R;
        manager
            .create_table(
                Table::create()
                    .table(R::Table)
                    .col(uuid(R::Id).primary_key())
                    .col(uuid(R::OrgId))
                    .col(uuid(R::CampaignId))
                    .col(uuid_null(R::ContactId))
                    .col(string(R::PhoneNumber))
                    .col(string(R::Status))
                    .col(boolean(R::Answered).default(false))
                    .col(string_null(R::Reply))
                    .col(string_null(R::Keypad))
                    .col(integer(R::DurationSeconds).default(0))
                    .col(integer(R::DialCount).default(0))
                    .col(uuid_null(R::LatestCallId))
                    .col(timestamp_with_time_zone_null(R::LatestCallAt))
                    .col(timestamp_with_time_zone_null(R::NextDialAt))
                    .col(timestamp_with_time_zone_null(R::FinishedAt))
                    .col(timestamp_with_time_zone(R::CreatedAt))
                    .col(timestamp_with_time_zone(R::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (R::Table, R::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (R::Table, R::CampaignId),
                        (CallCampaigns::Table, CallCampaigns::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (R::Table, R::ContactId),
                        (Contacts::Table, Contacts::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (R::Table, R::LatestCallId),
                        (Calls::Table, Calls::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // One row per number and campaign; the dialer's due receivers; the list; the foreign keys.
        index(
            manager,
            "ux_call_campaign_receivers_phone",
            R::Table,
            vec![R::CampaignId.into_iden(), R::PhoneNumber.into_iden()],
            true,
        )
        .await?;
        for (name, columns) in [
            (
                "ix_call_campaign_receivers_due",
                vec![
                    R::CampaignId.into_iden(),
                    R::Status.into_iden(),
                    R::NextDialAt.into_iden(),
                ],
            ),
            (
                "ix_call_campaign_receivers_list",
                vec![R::CampaignId.into_iden(), R::Id.into_iden()],
            ),
            (
                "ix_call_campaign_receivers_contact",
                vec![R::ContactId.into_iden()],
            ),
            ("ix_call_campaign_receivers_org", vec![R::OrgId.into_iden()]),
            (
                "ix_call_campaign_receivers_call",
                vec![R::LatestCallId.into_iden()],
            ),
        ] {
            index(manager, name, R::Table, columns, false).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CallCampaignReceivers::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(CallCampaigns::Table).to_owned())
            .await
    }
}
