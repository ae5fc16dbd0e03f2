//! Organizations, users, API tokens and the event log.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Name,
    Slug,
    DisplayName,
    Timezone,
    Locale,
    Settings,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    OrgId,
    Email,
    DisplayName,
    FirstName,
    LastName,
    MiddleName,
    AvatarUrl,
    Phone,
    AdditionalEmails,
    AdditionalPhones,
    Roles,
    Locale,
    Timezone,
    Status,
    PasswordHash,
    CreatedAt,
    UpdatedAt,
    DeactivatedAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    OrgId,
    UserId,
    Name,
    Kind,
    TokenHash,
    TokenPrefix,
    CreatedByUserId,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Seq,
    Id,
    OrgId,
    EventType,
    SubjectType,
    SubjectId,
    ActorUserId,
    Payload,
    CreatedAt,
}

fn ts<T: IntoIden>(col: T) -> ColumnDef {
    timestamp_with_time_zone(col)
}

fn ts_null<T: IntoIden>(col: T) -> ColumnDef {
    timestamp_with_time_zone_null(col)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(uuid(Organizations::Id).primary_key())
                    .col(string(Organizations::Name))
                    .col(string_uniq(Organizations::Slug))
                    .col(string_null(Organizations::DisplayName))
                    .col(string(Organizations::Timezone))
                    .col(string(Organizations::Locale))
                    .col(json(Organizations::Settings))
                    .col(ts(Organizations::CreatedAt))
                    .col(ts(Organizations::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(uuid(Users::Id).primary_key())
                    .col(uuid(Users::OrgId))
                    .col(string(Users::Email))
                    .col(string(Users::DisplayName))
                    .col(string_null(Users::FirstName))
                    .col(string_null(Users::LastName))
                    .col(string_null(Users::MiddleName))
                    .col(string_null(Users::AvatarUrl))
                    .col(string_null(Users::Phone))
                    .col(json(Users::AdditionalEmails))
                    .col(json(Users::AdditionalPhones))
                    .col(string(Users::Roles))
                    .col(string_null(Users::Locale))
                    .col(string_null(Users::Timezone))
                    .col(string(Users::Status))
                    .col(string_null(Users::PasswordHash))
                    .col(ts(Users::CreatedAt))
                    .col(ts(Users::UpdatedAt))
                    .col(ts_null(Users::DeactivatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Users::Table, Users::OrgId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_users_org_email")
                    .table(Users::Table)
                    .col(Users::OrgId)
                    .col(Users::Email)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_users_org_created")
                    .table(Users::Table)
                    .col(Users::OrgId)
                    .col(Users::CreatedAt)
                    .col(Users::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_users_org_name")
                    .table(Users::Table)
                    .col(Users::OrgId)
                    .col(Users::DisplayName)
                    .col(Users::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .col(uuid(ApiTokens::Id).primary_key())
                    .col(uuid(ApiTokens::OrgId))
                    .col(uuid(ApiTokens::UserId))
                    .col(string(ApiTokens::Name))
                    .col(string(ApiTokens::Kind))
                    .col(string_uniq(ApiTokens::TokenHash))
                    .col(string(ApiTokens::TokenPrefix))
                    .col(uuid_null(ApiTokens::CreatedByUserId))
                    .col(ts(ApiTokens::CreatedAt))
                    .col(ts_null(ApiTokens::LastUsedAt))
                    .col(ts_null(ApiTokens::ExpiresAt))
                    .col(ts_null(ApiTokens::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiTokens::Table, ApiTokens::OrgId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiTokens::Table, ApiTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiTokens::Table, ApiTokens::CreatedByUserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("ix_api_tokens_org_created", ApiTokens::OrgId),
            ("ix_api_tokens_user", ApiTokens::UserId),
            ("ix_api_tokens_created_by", ApiTokens::CreatedByUserId),
        ] {
            let mut index = Index::create();
            index.name(name).table(ApiTokens::Table).col(col);
            if name == "ix_api_tokens_org_created" {
                index.col(ApiTokens::CreatedAt).col(ApiTokens::Id);
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(big_pk_auto(Events::Seq))
                    .col(uuid_uniq(Events::Id))
                    .col(uuid(Events::OrgId))
                    .col(string(Events::EventType))
                    .col(string(Events::SubjectType))
                    .col(uuid(Events::SubjectId))
                    .col(uuid_null(Events::ActorUserId))
                    .col(json(Events::Payload))
                    .col(ts(Events::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Events::Table, Events::OrgId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_events_org_seq")
                    .table(Events::Table)
                    .col(Events::OrgId)
                    .col(Events::Seq)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_events_subject")
                    .table(Events::Table)
                    .col(Events::SubjectId)
                    .col(Events::Seq)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Events::Table.into_iden(),
            ApiTokens::Table.into_iden(),
            Users::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
