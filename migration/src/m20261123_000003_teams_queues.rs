//! Teams and queues (with their members).

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
    OrgId,
    Name,
    Description,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TeamMembers {
    Table,
    TeamId,
    UserId,
    OrgId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Queues {
    Table,
    Id,
    OrgId,
    Name,
    Priority,
    IsDefault,
    OfferAlgorithm,
    OfferTimeoutSeconds,
    WrapupTimeoutSeconds,
    MemberListType,
    Thresholds,
    DoNotOfferEnabled,
    DoNotOfferTimeouts,
    PreferredAgentEnabled,
    PreferredAgentTimeouts,
    OfferAbandonedConversations,
    PersonalAgentOfflineTimeoutSeconds,
    PreferredAgentOfflineTimeoutSeconds,
    CallFunctionality,
    SlaCalculationMethod,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum QueueMembers {
    Table,
    QueueId,
    UserId,
    OrgId,
    Priority,
    CreatedAt,
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
                    .table(Teams::Table)
                    .col(uuid(Teams::Id).primary_key())
                    .col(uuid(Teams::OrgId))
                    .col(string(Teams::Name))
                    .col(text_null(Teams::Description))
                    .col(timestamp_with_time_zone(Teams::CreatedAt))
                    .col(timestamp_with_time_zone(Teams::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (Teams::Table, Teams::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_teams_org_name",
            Teams::Table,
            vec![
                Teams::OrgId.into_iden(),
                Teams::Name.into_iden(),
                Teams::Id.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(TeamMembers::Table)
                    .col(uuid(TeamMembers::TeamId))
                    .col(uuid(TeamMembers::UserId))
                    .col(uuid(TeamMembers::OrgId))
                    .col(timestamp_with_time_zone(TeamMembers::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(TeamMembers::TeamId)
                            .col(TeamMembers::UserId),
                    )
                    .foreign_key(&mut cascade(
                        (TeamMembers::Table, TeamMembers::TeamId),
                        (Teams::Table, Teams::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (TeamMembers::Table, TeamMembers::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (TeamMembers::Table, TeamMembers::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_team_members_user",
            TeamMembers::Table,
            vec![TeamMembers::UserId.into_iden()],
            false,
        )
        .await?;
        index(
            manager,
            "ix_team_members_org",
            TeamMembers::Table,
            vec![TeamMembers::OrgId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Queues::Table)
                    .col(uuid(Queues::Id).primary_key())
                    .col(uuid(Queues::OrgId))
                    .col(string(Queues::Name))
                    .col(integer(Queues::Priority))
                    .col(boolean(Queues::IsDefault))
                    .col(string(Queues::OfferAlgorithm))
                    .col(integer_null(Queues::OfferTimeoutSeconds))
                    .col(integer_null(Queues::WrapupTimeoutSeconds))
                    .col(string(Queues::MemberListType))
                    .col(json(Queues::Thresholds))
                    .col(boolean(Queues::DoNotOfferEnabled))
                    .col(json(Queues::DoNotOfferTimeouts))
                    .col(boolean(Queues::PreferredAgentEnabled))
                    .col(json(Queues::PreferredAgentTimeouts))
                    .col(boolean(Queues::OfferAbandonedConversations))
                    .col(integer_null(Queues::PersonalAgentOfflineTimeoutSeconds))
                    .col(integer_null(Queues::PreferredAgentOfflineTimeoutSeconds))
                    .col(boolean(Queues::CallFunctionality))
                    .col(string(Queues::SlaCalculationMethod))
                    .col(timestamp_with_time_zone(Queues::CreatedAt))
                    .col(timestamp_with_time_zone(Queues::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (Queues::Table, Queues::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_queues_org_priority",
            Queues::Table,
            vec![
                Queues::OrgId.into_iden(),
                Queues::Priority.into_iden(),
                Queues::Id.into_iden(),
            ],
            false,
        )
        .await?;
        // Exactly one default queue per organization: at most one here, at least one by the
        // service (the first queue becomes the default; the default cannot be deleted).
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_queues_org_default ON queues (org_id) WHERE is_default",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(QueueMembers::Table)
                    .col(uuid(QueueMembers::QueueId))
                    .col(uuid(QueueMembers::UserId))
                    .col(uuid(QueueMembers::OrgId))
                    .col(integer(QueueMembers::Priority))
                    .col(timestamp_with_time_zone(QueueMembers::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(QueueMembers::QueueId)
                            .col(QueueMembers::UserId),
                    )
                    .foreign_key(&mut cascade(
                        (QueueMembers::Table, QueueMembers::QueueId),
                        (Queues::Table, Queues::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (QueueMembers::Table, QueueMembers::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (QueueMembers::Table, QueueMembers::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_queue_members_user",
            QueueMembers::Table,
            vec![QueueMembers::UserId.into_iden()],
            false,
        )
        .await?;
        index(
            manager,
            "ix_queue_members_org",
            QueueMembers::Table,
            vec![QueueMembers::OrgId.into_iden()],
            false,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            QueueMembers::Table.into_iden(),
            Queues::Table.into_iden(),
            TeamMembers::Table.into_iden(),
            Teams::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
