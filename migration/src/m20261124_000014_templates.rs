//! Message templates: text with `{{ placeholders }}`, in variants per channel type and locale
//! under one name.

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index, set_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Templates {
    Table,
    Id,
    OrgId,
    Name,
    NameKey,
    ChannelType,
    Locale,
    VariantKey,
    Subject,
    Text,
    Html,
    Variables,
    ArchivedAt,
    CreatedBy,
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

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Templates::Table)
                    .col(uuid(Templates::Id).primary_key())
                    .col(uuid(Templates::OrgId))
                    .col(string(Templates::Name))
                    .col(string(Templates::NameKey))
                    .col(string_null(Templates::ChannelType))
                    .col(string_null(Templates::Locale))
                    .col(string(Templates::VariantKey))
                    .col(text_null(Templates::Subject))
                    .col(text(Templates::Text))
                    .col(text_null(Templates::Html))
                    .col(json(Templates::Variables))
                    .col(timestamp_with_time_zone_null(Templates::ArchivedAt))
                    .col(uuid_null(Templates::CreatedBy))
                    .col(timestamp_with_time_zone(Templates::CreatedAt))
                    .col(timestamp_with_time_zone(Templates::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (Templates::Table, Templates::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (Templates::Table, Templates::CreatedBy),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_templates_variant",
            Templates::Table,
            vec![
                Templates::OrgId.into_iden(),
                Templates::VariantKey.into_iden(),
            ],
            true,
        )
        .await?;
        index(
            manager,
            "ix_templates_name",
            Templates::Table,
            vec![
                Templates::OrgId.into_iden(),
                Templates::NameKey.into_iden(),
                Templates::Id.into_iden(),
            ],
            false,
        )
        .await?;
        index(
            manager,
            "ix_templates_created_by",
            Templates::Table,
            vec![Templates::CreatedBy.into_iden()],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Templates::Table).to_owned())
            .await
    }
}
