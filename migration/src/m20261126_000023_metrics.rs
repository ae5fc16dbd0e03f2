//! Metrics: the raw facts metrics are computed from (one row per measured occurrence) and their
//! hourly rollups, both written by the event hook in the transaction of the change.

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MetricFacts {
    Table,
    Id,
    OrgId,
    Metric,
    AtMs,
    ConversationId,
    ChannelId,
    ChannelType,
    QueueId,
    UserId,
    Direction,
    Value,
}

#[derive(DeriveIden)]
enum MetricRollups {
    Table,
    OrgId,
    Metric,
    Grain,
    Hour,
    ChannelId,
    ChannelType,
    QueueId,
    UserId,
    Direction,
    Count,
    Sum,
    SumSq,
    Min,
    Max,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use MetricFacts as F;
        use MetricRollups as R;
        manager
            .create_table(
                Table::create()
                    .table(F::Table)
                    .col(uuid(F::Id).primary_key())
                    .col(uuid(F::OrgId))
                    .col(string(F::Metric))
                    .col(big_integer(F::AtMs))
                    .col(uuid_null(F::ConversationId))
                    .col(uuid_null(F::ChannelId))
                    .col(string_null(F::ChannelType))
                    .col(uuid_null(F::QueueId))
                    .col(uuid_null(F::UserId))
                    .col(string_null(F::Direction))
                    .col(double(F::Value))
                    .foreign_key(&mut cascade(
                        (F::Table, F::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_metric_facts_org_metric_at",
            F::Table,
            vec![
                F::OrgId.into_iden(),
                F::Metric.into_iden(),
                F::AtMs.into_iden(),
            ],
            false,
        )
        .await?;
        index(
            manager,
            "ix_metric_facts_conversation",
            F::Table,
            vec![F::ConversationId.into_iden(), F::Metric.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(R::Table)
                    .col(uuid(R::OrgId))
                    .col(string(R::Metric))
                    .col(small_integer(R::Grain))
                    .col(big_integer(R::Hour))
                    .col(uuid(R::ChannelId))
                    .col(string(R::ChannelType))
                    .col(uuid(R::QueueId))
                    .col(uuid(R::UserId))
                    .col(string(R::Direction))
                    .col(big_integer(R::Count))
                    .col(double(R::Sum))
                    .col(double(R::SumSq))
                    .col(double(R::Min))
                    .col(double(R::Max))
                    .primary_key(
                        Index::create()
                            .col(R::OrgId)
                            .col(R::Metric)
                            .col(R::Grain)
                            .col(R::Hour)
                            .col(R::ChannelId)
                            .col(R::QueueId)
                            .col(R::UserId)
                            .col(R::Direction),
                    )
                    .foreign_key(&mut cascade(
                        (R::Table, R::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MetricRollups::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(MetricFacts::Table).to_owned())
            .await?;
        Ok(())
    }
}
