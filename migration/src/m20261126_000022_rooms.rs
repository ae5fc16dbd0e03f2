//! Rooms: voice conferences and video rooms, their participants (users or contacts) and their
//! recordings.

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index, set_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Rooms {
    Table,
    Id,
    OrgId,
    Kind,
    Name,
    State,
    StartsAt,
    DurationMinutes,
    EndsAt,
    MaxParticipants,
    Recorded,
    ConversationId,
    Secret,
    OpenedAt,
    FirstConnectedAt,
    EmptySince,
    EndedAt,
    FailureReason,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RoomParticipants {
    Table,
    Id,
    OrgId,
    RoomId,
    UserId,
    ContactId,
    Status,
    Audio,
    InvitedBy,
    InvitedAt,
    JoinedAt,
    LeftAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RoomRecordings {
    Table,
    Id,
    OrgId,
    RoomId,
    Status,
    ProcessingPercent,
    DurationSeconds,
    SizeBytes,
    CompletedAt,
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
enum Contacts {
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
        manager
            .create_table(
                Table::create()
                    .table(Rooms::Table)
                    .col(uuid(Rooms::Id).primary_key())
                    .col(uuid(Rooms::OrgId))
                    .col(string(Rooms::Kind))
                    .col(string(Rooms::Name))
                    .col(string(Rooms::State))
                    .col(timestamp_with_time_zone(Rooms::StartsAt))
                    .col(integer(Rooms::DurationMinutes))
                    .col(timestamp_with_time_zone(Rooms::EndsAt))
                    .col(integer(Rooms::MaxParticipants))
                    .col(boolean(Rooms::Recorded).default(false))
                    .col(uuid_null(Rooms::ConversationId))
                    .col(string(Rooms::Secret))
                    .col(timestamp_with_time_zone_null(Rooms::OpenedAt))
                    .col(timestamp_with_time_zone_null(Rooms::FirstConnectedAt))
                    .col(timestamp_with_time_zone_null(Rooms::EmptySince))
                    .col(timestamp_with_time_zone_null(Rooms::EndedAt))
                    .col(text_null(Rooms::FailureReason))
                    .col(uuid_null(Rooms::CreatedBy))
                    .col(timestamp_with_time_zone(Rooms::CreatedAt))
                    .col(timestamp_with_time_zone(Rooms::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (Rooms::Table, Rooms::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (Rooms::Table, Rooms::ConversationId),
                        (Conversations::Table, Conversations::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (Rooms::Table, Rooms::CreatedBy),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // The list, newest first, optionally by state.
        index(
            manager,
            "ix_rooms_org",
            Rooms::Table,
            vec![
                Rooms::OrgId.into_iden(),
                Rooms::CreatedAt.into_iden(),
                Rooms::Id.into_iden(),
            ],
            false,
        )
        .await?;
        index(
            manager,
            "ix_rooms_state",
            Rooms::Table,
            vec![
                Rooms::OrgId.into_iden(),
                Rooms::State.into_iden(),
                Rooms::CreatedAt.into_iden(),
            ],
            false,
        )
        .await?;
        for (name, column) in [
            ("ix_rooms_conversation", Rooms::ConversationId),
            ("ix_rooms_created_by", Rooms::CreatedBy),
        ] {
            index(manager, name, Rooms::Table, vec![column.into_iden()], false).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(RoomParticipants::Table)
                    .col(uuid(RoomParticipants::Id).primary_key())
                    .col(uuid(RoomParticipants::OrgId))
                    .col(uuid(RoomParticipants::RoomId))
                    .col(uuid_null(RoomParticipants::UserId))
                    .col(uuid_null(RoomParticipants::ContactId))
                    .col(string(RoomParticipants::Status))
                    .col(string(RoomParticipants::Audio))
                    .col(uuid_null(RoomParticipants::InvitedBy))
                    .col(timestamp_with_time_zone_null(RoomParticipants::InvitedAt))
                    .col(timestamp_with_time_zone_null(RoomParticipants::JoinedAt))
                    .col(timestamp_with_time_zone_null(RoomParticipants::LeftAt))
                    .col(timestamp_with_time_zone(RoomParticipants::CreatedAt))
                    .col(timestamp_with_time_zone(RoomParticipants::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (RoomParticipants::Table, RoomParticipants::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (RoomParticipants::Table, RoomParticipants::RoomId),
                        (Rooms::Table, Rooms::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (RoomParticipants::Table, RoomParticipants::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (RoomParticipants::Table, RoomParticipants::ContactId),
                        (Contacts::Table, Contacts::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (RoomParticipants::Table, RoomParticipants::InvitedBy),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // One row per user and per contact of a room (NULLs do not collide); the rooms of a
        // user (the `participantUser` filter) and of a contact.
        index(
            manager,
            "ux_room_participants_user",
            RoomParticipants::Table,
            vec![
                RoomParticipants::RoomId.into_iden(),
                RoomParticipants::UserId.into_iden(),
            ],
            true,
        )
        .await?;
        index(
            manager,
            "ux_room_participants_contact",
            RoomParticipants::Table,
            vec![
                RoomParticipants::RoomId.into_iden(),
                RoomParticipants::ContactId.into_iden(),
            ],
            true,
        )
        .await?;
        for (name, column) in [
            ("ix_room_participants_user", RoomParticipants::UserId),
            ("ix_room_participants_contact", RoomParticipants::ContactId),
            (
                "ix_room_participants_invited_by",
                RoomParticipants::InvitedBy,
            ),
            ("ix_room_participants_org", RoomParticipants::OrgId),
        ] {
            index(
                manager,
                name,
                RoomParticipants::Table,
                vec![column.into_iden()],
                false,
            )
            .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(RoomRecordings::Table)
                    .col(uuid(RoomRecordings::Id).primary_key())
                    .col(uuid(RoomRecordings::OrgId))
                    .col(uuid(RoomRecordings::RoomId))
                    .col(string(RoomRecordings::Status))
                    .col(integer(RoomRecordings::ProcessingPercent).default(0))
                    .col(big_integer_null(RoomRecordings::DurationSeconds))
                    .col(big_integer_null(RoomRecordings::SizeBytes))
                    .col(timestamp_with_time_zone_null(RoomRecordings::CompletedAt))
                    .col(timestamp_with_time_zone(RoomRecordings::CreatedAt))
                    .col(timestamp_with_time_zone(RoomRecordings::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (RoomRecordings::Table, RoomRecordings::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (RoomRecordings::Table, RoomRecordings::RoomId),
                        (Rooms::Table, Rooms::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_room_recordings_room",
            RoomRecordings::Table,
            vec![
                RoomRecordings::RoomId.into_iden(),
                RoomRecordings::CreatedAt.into_iden(),
            ],
            false,
        )
        .await?;
        index(
            manager,
            "ix_room_recordings_org",
            RoomRecordings::Table,
            vec![RoomRecordings::OrgId.into_iden()],
            false,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RoomRecordings::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RoomParticipants::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Rooms::Table).to_owned())
            .await
    }
}
