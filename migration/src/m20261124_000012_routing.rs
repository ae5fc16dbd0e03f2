//! Routing: offers of queued conversations to agents. A conversation has at most one pending
//! offer round: for the one-at-a-time algorithms one pending offer per conversation, for the
//! all-at-once ones one per member; both enforced by partial unique indexes, so instances that
//! route the same conversation at once cannot both offer it.

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ConversationOffers {
    Table,
    Id,
    OrgId,
    ConversationId,
    QueueId,
    UserId,
    Single,
    Status,
    OfferedAt,
    ExpiresAt,
    AnsweredAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Conversations {
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
                    .table(ConversationOffers::Table)
                    .col(uuid(ConversationOffers::Id).primary_key())
                    .col(uuid(ConversationOffers::OrgId))
                    .col(uuid(ConversationOffers::ConversationId))
                    .col(uuid(ConversationOffers::QueueId))
                    .col(uuid(ConversationOffers::UserId))
                    .col(boolean(ConversationOffers::Single))
                    .col(string(ConversationOffers::Status))
                    .col(timestamp_with_time_zone(ConversationOffers::OfferedAt))
                    .col(timestamp_with_time_zone(ConversationOffers::ExpiresAt))
                    .col(timestamp_with_time_zone_null(
                        ConversationOffers::AnsweredAt,
                    ))
                    .foreign_key(&mut cascade(
                        (ConversationOffers::Table, ConversationOffers::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (
                            ConversationOffers::Table,
                            ConversationOffers::ConversationId,
                        ),
                        (Conversations::Table, Conversations::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (ConversationOffers::Table, ConversationOffers::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "ix_conversation_offers_conversation",
                vec![ConversationOffers::ConversationId.into_iden()],
            ),
            (
                "ix_conversation_offers_user",
                vec![
                    ConversationOffers::UserId.into_iden(),
                    ConversationOffers::Status.into_iden(),
                ],
            ),
            (
                "ix_conversation_offers_expiry",
                vec![
                    ConversationOffers::Status.into_iden(),
                    ConversationOffers::ExpiresAt.into_iden(),
                ],
            ),
            (
                "ix_conversation_offers_org",
                vec![ConversationOffers::OrgId.into_iden()],
            ),
        ] {
            index(manager, name, ConversationOffers::Table, columns, false).await?;
        }
        // Partial unique indexes (same syntax on SQLite and PostgreSQL).
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_conversation_offers_single_pending \
             ON conversation_offers (conversation_id) \
             WHERE status = 'PENDING' AND single",
        )
        .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_conversation_offers_member_pending \
             ON conversation_offers (conversation_id, user_id) \
             WHERE status = 'PENDING'",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ConversationOffers::Table).to_owned())
            .await
    }
}
