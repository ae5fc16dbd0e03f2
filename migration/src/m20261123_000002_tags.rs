//! Tags.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tags {
    Table,
    Id,
    OrgId,
    Name,
    NameKey,
    Color,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tags::Table)
                    .col(uuid(Tags::Id).primary_key())
                    .col(uuid(Tags::OrgId))
                    .col(string(Tags::Name))
                    .col(string(Tags::NameKey))
                    .col(string_null(Tags::Color))
                    .col(string(Tags::Status))
                    .col(timestamp_with_time_zone(Tags::CreatedAt))
                    .col(timestamp_with_time_zone(Tags::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Tags::Table, Tags::OrgId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_tags_org_name_key")
                    .table(Tags::Table)
                    .col(Tags::OrgId)
                    .col(Tags::NameKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Tags::Table).to_owned())
            .await
    }
}
