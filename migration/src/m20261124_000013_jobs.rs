//! Durable jobs and the per-channel send throttle.
//!
//! `jobs`: one row per unit of background work. Workers claim due rows (`QUEUED` with `run_at`
//! passed, or `RUNNING` with an expired lease) by setting a lease; a finished job stays as
//! `SUCCEEDED` or `FAILED` (with its last error) until the retention sweep deletes succeeded
//! ones. `send_throttles`: per channel, the next free send slot (`next_at`), moved atomically by
//! every send so that the channel's rate holds across workers and instances.

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    OrgId,
    Kind,
    Payload,
    Status,
    RunAt,
    Attempts,
    MaxAttempts,
    LeaseOwner,
    LeaseExpiresAt,
    LastError,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum SendThrottles {
    Table,
    ChannelId,
    NextAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Channels {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .col(uuid(Jobs::Id).primary_key())
                    .col(uuid_null(Jobs::OrgId))
                    .col(string(Jobs::Kind))
                    .col(json(Jobs::Payload))
                    .col(string(Jobs::Status))
                    .col(timestamp_with_time_zone(Jobs::RunAt))
                    .col(integer(Jobs::Attempts))
                    .col(integer(Jobs::MaxAttempts))
                    .col(string_null(Jobs::LeaseOwner))
                    .col(timestamp_with_time_zone_null(Jobs::LeaseExpiresAt))
                    .col(text_null(Jobs::LastError))
                    .col(timestamp_with_time_zone(Jobs::CreatedAt))
                    .col(timestamp_with_time_zone(Jobs::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Jobs::FinishedAt))
                    .foreign_key(&mut cascade(
                        (Jobs::Table, Jobs::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            // Claims: due queued jobs by run_at, running ones by lease expiry.
            (
                "ix_jobs_due",
                vec![Jobs::Status.into_iden(), Jobs::RunAt.into_iden()],
            ),
            (
                "ix_jobs_lease",
                vec![Jobs::Status.into_iden(), Jobs::LeaseExpiresAt.into_iden()],
            ),
            // The retention sweep.
            (
                "ix_jobs_finished",
                vec![Jobs::Status.into_iden(), Jobs::FinishedAt.into_iden()],
            ),
            ("ix_jobs_org", vec![Jobs::OrgId.into_iden()]),
        ] {
            index(manager, name, Jobs::Table, columns, false).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(SendThrottles::Table)
                    .col(uuid(SendThrottles::ChannelId).primary_key())
                    .col(timestamp_with_time_zone(SendThrottles::NextAt))
                    .foreign_key(&mut cascade(
                        (SendThrottles::Table, SendThrottles::ChannelId),
                        (Channels::Table, Channels::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SendThrottles::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Jobs::Table).to_owned())
            .await
    }
}
