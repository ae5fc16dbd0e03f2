//! Auto-responders (keyword, out-of-hours, first-message and SMS consent confirmations) per
//! channel, and the log of the replies they sent.

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index, set_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AutoResponders {
    Table,
    Id,
    OrgId,
    ChannelId,
    Name,
    Trigger,
    MatchKind,
    Keywords,
    Body,
    BusinessHours,
    StartsAt,
    EndsAt,
    Enabled,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AutoResponderReplies {
    Table,
    Id,
    OrgId,
    ResponderId,
    ConversationId,
    InboundMessageId,
    MessageId,
    CreatedAt,
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

#[derive(DeriveIden)]
enum Users {
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
                    .table(AutoResponders::Table)
                    .col(uuid(AutoResponders::Id).primary_key())
                    .col(uuid(AutoResponders::OrgId))
                    .col(uuid(AutoResponders::ChannelId))
                    .col(string(AutoResponders::Name))
                    .col(string(AutoResponders::Trigger))
                    .col(string_null(AutoResponders::MatchKind))
                    .col(json(AutoResponders::Keywords))
                    .col(text(AutoResponders::Body))
                    .col(json_null(AutoResponders::BusinessHours))
                    .col(timestamp_with_time_zone_null(AutoResponders::StartsAt))
                    .col(timestamp_with_time_zone_null(AutoResponders::EndsAt))
                    .col(boolean(AutoResponders::Enabled))
                    .col(uuid_null(AutoResponders::CreatedBy))
                    .col(timestamp_with_time_zone(AutoResponders::CreatedAt))
                    .col(timestamp_with_time_zone(AutoResponders::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (AutoResponders::Table, AutoResponders::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (AutoResponders::Table, AutoResponders::ChannelId),
                        (Channels::Table, Channels::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (AutoResponders::Table, AutoResponders::CreatedBy),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AutoResponderReplies::Table)
                    .col(uuid(AutoResponderReplies::Id).primary_key())
                    .col(uuid(AutoResponderReplies::OrgId))
                    .col(uuid_null(AutoResponderReplies::ResponderId))
                    .col(uuid(AutoResponderReplies::ConversationId))
                    .col(uuid(AutoResponderReplies::InboundMessageId))
                    .col(uuid(AutoResponderReplies::MessageId))
                    .col(timestamp_with_time_zone(AutoResponderReplies::CreatedAt))
                    .foreign_key(&mut cascade(
                        (AutoResponderReplies::Table, AutoResponderReplies::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (
                            AutoResponderReplies::Table,
                            AutoResponderReplies::ResponderId,
                        ),
                        (AutoResponders::Table, AutoResponders::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (
                            AutoResponderReplies::Table,
                            AutoResponderReplies::ConversationId,
                        ),
                        (Conversations::Table, Conversations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, table, columns) in [
            (
                "ix_auto_responders_channel",
                AutoResponders::Table.into_iden(),
                vec![
                    AutoResponders::ChannelId.into_iden(),
                    AutoResponders::Enabled.into_iden(),
                ],
            ),
            (
                "ix_auto_responders_org",
                AutoResponders::Table.into_iden(),
                vec![
                    AutoResponders::OrgId.into_iden(),
                    AutoResponders::CreatedAt.into_iden(),
                ],
            ),
            (
                "ix_auto_responders_created_by",
                AutoResponders::Table.into_iden(),
                vec![AutoResponders::CreatedBy.into_iden()],
            ),
            (
                "ix_auto_responder_replies_responder",
                AutoResponderReplies::Table.into_iden(),
                vec![
                    AutoResponderReplies::ResponderId.into_iden(),
                    AutoResponderReplies::ConversationId.into_iden(),
                    AutoResponderReplies::CreatedAt.into_iden(),
                ],
            ),
            (
                "ix_auto_responder_replies_conversation",
                AutoResponderReplies::Table.into_iden(),
                vec![AutoResponderReplies::ConversationId.into_iden()],
            ),
            (
                "ix_auto_responder_replies_org",
                AutoResponderReplies::Table.into_iden(),
                vec![AutoResponderReplies::OrgId.into_iden()],
            ),
        ] {
            index(manager, name, table, columns, false).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AutoResponderReplies::Table.into_iden(),
            AutoResponders::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
