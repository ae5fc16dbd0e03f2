//! Inbound ingest and providers: each channel's ingest signing secret, the provider's id of a
//! message (unique per channel, so a repeated inbound message or status callback is recognised)
//! and an email's `Message-ID` header (replies thread by `In-Reply-To`/`References`).

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Channels {
    Table,
    IngestSecret,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    OrgId,
    ProviderChannelId,
    ProviderMessageId,
    MessageIdHeader,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Channels::Table)
                    .add_column(string_null(Channels::IngestSecret))
                    .to_owned(),
            )
            .await?;
        for column in [
            uuid_null(Messages::ProviderChannelId),
            string_null(Messages::ProviderMessageId),
            string_null(Messages::MessageIdHeader),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        index(
            manager,
            "ux_messages_provider_message_id",
            Messages::Table,
            vec![
                Messages::ProviderChannelId.into_iden(),
                Messages::ProviderMessageId.into_iden(),
            ],
            true,
        )
        .await?;
        index(
            manager,
            "ix_messages_org_message_id_header",
            Messages::Table,
            vec![
                Messages::OrgId.into_iden(),
                Messages::MessageIdHeader.into_iden(),
            ],
            false,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "ux_messages_provider_message_id",
            "ix_messages_org_message_id_header",
        ] {
            manager
                .drop_index(Index::drop().name(name).table(Messages::Table).to_owned())
                .await?;
        }
        for column in [
            Messages::ProviderChannelId.into_iden(),
            Messages::ProviderMessageId.into_iden(),
            Messages::MessageIdHeader.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Channels::Table)
                    .drop_column(Channels::IngestSecret)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
