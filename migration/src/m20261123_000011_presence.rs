//! Presence: one row per user with their connection status (kept across instances), the
//! presence status they chose, the channel types they take and their capacity per type; and
//! the websocket connections live instances hold, each with an expiry the instance renews, so
//! that the connections of an instance that crashed expire.

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UserPresence {
    Table,
    UserId,
    OrgId,
    ConnectionStatus,
    PresenceStatus,
    ActiveChannels,
    Capacity,
    LastSeen,
    OfflineAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PresenceConnections {
    Table,
    Id,
    OrgId,
    UserId,
    TokenId,
    InstanceId,
    ConnectedAt,
    ExpiresAt,
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
                    .table(UserPresence::Table)
                    .col(uuid(UserPresence::UserId).primary_key())
                    .col(uuid(UserPresence::OrgId))
                    .col(string(UserPresence::ConnectionStatus))
                    .col(string(UserPresence::PresenceStatus))
                    .col(string(UserPresence::ActiveChannels))
                    .col(json(UserPresence::Capacity))
                    .col(timestamp_with_time_zone_null(UserPresence::LastSeen))
                    .col(timestamp_with_time_zone_null(UserPresence::OfflineAt))
                    .col(timestamp_with_time_zone(UserPresence::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (UserPresence::Table, UserPresence::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (UserPresence::Table, UserPresence::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // The sweep looks for users online without a connection.
        index(
            manager,
            "ix_user_presence_connection_status",
            UserPresence::Table,
            vec![UserPresence::ConnectionStatus.into_iden()],
            false,
        )
        .await?;
        index(
            manager,
            "ix_user_presence_org",
            UserPresence::Table,
            vec![UserPresence::OrgId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PresenceConnections::Table)
                    .col(uuid(PresenceConnections::Id).primary_key())
                    .col(uuid(PresenceConnections::OrgId))
                    .col(uuid(PresenceConnections::UserId))
                    .col(uuid(PresenceConnections::TokenId))
                    .col(uuid(PresenceConnections::InstanceId))
                    .col(timestamp_with_time_zone(PresenceConnections::ConnectedAt))
                    .col(timestamp_with_time_zone(PresenceConnections::ExpiresAt))
                    .foreign_key(&mut cascade(
                        (PresenceConnections::Table, PresenceConnections::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (PresenceConnections::Table, PresenceConnections::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("ix_presence_connections_user", PresenceConnections::UserId),
            (
                "ix_presence_connections_instance",
                PresenceConnections::InstanceId,
            ),
            (
                "ix_presence_connections_expires",
                PresenceConnections::ExpiresAt,
            ),
            ("ix_presence_connections_org", PresenceConnections::OrgId),
        ] {
            index(
                manager,
                name,
                PresenceConnections::Table,
                vec![column.into_iden()],
                false,
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PresenceConnections::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(UserPresence::Table).to_owned())
            .await
    }
}
