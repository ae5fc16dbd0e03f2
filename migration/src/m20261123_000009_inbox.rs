//! The inbox's details: conversation participants, tags, custom attribute values and per-reader
//! read positions; message reactions and delivery status history; attachments; notes.

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index, set_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ConversationParticipants {
    Table,
    Id,
    OrgId,
    ConversationId,
    ParticipantKind,
    ParticipantId,
    AddedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ConversationTags {
    Table,
    ConversationId,
    TagId,
    OrgId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ConversationAttributeValues {
    Table,
    ConversationId,
    DefinitionId,
    OrgId,
    Identifier,
    TextValue,
    NumberValue,
    BoolValue,
    DateValue,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ConversationReads {
    Table,
    ConversationId,
    ReaderId,
    OrgId,
    ReaderKind,
    LastReadAt,
}

#[derive(DeriveIden)]
enum MessageReactions {
    Table,
    Id,
    OrgId,
    MessageId,
    ReactorKind,
    ReactorId,
    Reaction,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MessageStatusEvents {
    Table,
    Id,
    OrgId,
    MessageId,
    Status,
    Reason,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Attachments {
    Table,
    Id,
    OrgId,
    MessageId,
    Filename,
    ContentType,
    SizeBytes,
    Sha256,
    StorageKey,
    UploadedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Notes {
    Table,
    Id,
    OrgId,
    ConversationId,
    AuthorUserId,
    Body,
    CreatedAt,
    UpdatedAt,
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
enum Messages {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Tags {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum CustomAttributeDefinitions {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

fn org_fk(
    table: impl IntoIden + 'static,
    column: impl IntoIden + 'static,
) -> ForeignKeyCreateStatement {
    cascade((table, column), (Organizations::Table, Organizations::Id))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ConversationParticipants as P;
        manager
            .create_table(
                Table::create()
                    .table(P::Table)
                    .col(uuid(P::Id).primary_key())
                    .col(uuid(P::OrgId))
                    .col(uuid(P::ConversationId))
                    .col(string(P::ParticipantKind))
                    .col(uuid(P::ParticipantId))
                    .col(uuid_null(P::AddedBy))
                    .col(timestamp_with_time_zone(P::CreatedAt))
                    .foreign_key(&mut org_fk(P::Table, P::OrgId))
                    .foreign_key(&mut cascade(
                        (P::Table, P::ConversationId),
                        (Conversations::Table, Conversations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_conversation_participants",
            P::Table,
            vec![P::ConversationId.into_iden(), P::ParticipantId.into_iden()],
            true,
        )
        .await?;
        index(
            manager,
            "ix_conversation_participants_participant",
            P::Table,
            vec![P::ParticipantId.into_iden()],
            false,
        )
        .await?;

        use ConversationTags as T;
        manager
            .create_table(
                Table::create()
                    .table(T::Table)
                    .col(uuid(T::ConversationId))
                    .col(uuid(T::TagId))
                    .col(uuid(T::OrgId))
                    .col(timestamp_with_time_zone(T::CreatedAt))
                    .primary_key(Index::create().col(T::ConversationId).col(T::TagId))
                    .foreign_key(&mut org_fk(T::Table, T::OrgId))
                    .foreign_key(&mut cascade(
                        (T::Table, T::ConversationId),
                        (Conversations::Table, Conversations::Id),
                    ))
                    .foreign_key(&mut cascade((T::Table, T::TagId), (Tags::Table, Tags::Id)))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_conversation_tags_tag",
            T::Table,
            vec![T::TagId.into_iden(), T::ConversationId.into_iden()],
            false,
        )
        .await?;

        use ConversationAttributeValues as V;
        manager
            .create_table(
                Table::create()
                    .table(V::Table)
                    .col(uuid(V::ConversationId))
                    .col(uuid(V::DefinitionId))
                    .col(uuid(V::OrgId))
                    .col(string(V::Identifier))
                    .col(text_null(V::TextValue))
                    .col(double_null(V::NumberValue))
                    .col(boolean_null(V::BoolValue))
                    .col(date_null(V::DateValue))
                    .col(timestamp_with_time_zone(V::UpdatedAt))
                    .primary_key(Index::create().col(V::ConversationId).col(V::DefinitionId))
                    .foreign_key(&mut org_fk(V::Table, V::OrgId))
                    .foreign_key(&mut cascade(
                        (V::Table, V::ConversationId),
                        (Conversations::Table, Conversations::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (V::Table, V::DefinitionId),
                        (
                            CustomAttributeDefinitions::Table,
                            CustomAttributeDefinitions::Id,
                        ),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_conversation_attribute_values_definition",
            V::Table,
            vec![V::DefinitionId.into_iden()],
            false,
        )
        .await?;

        use ConversationReads as R;
        manager
            .create_table(
                Table::create()
                    .table(R::Table)
                    .col(uuid(R::ConversationId))
                    .col(uuid(R::ReaderId))
                    .col(uuid(R::OrgId))
                    .col(string(R::ReaderKind))
                    .col(timestamp_with_time_zone(R::LastReadAt))
                    .primary_key(Index::create().col(R::ConversationId).col(R::ReaderId))
                    .foreign_key(&mut org_fk(R::Table, R::OrgId))
                    .foreign_key(&mut cascade(
                        (R::Table, R::ConversationId),
                        (Conversations::Table, Conversations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_conversation_reads_reader",
            R::Table,
            vec![R::ReaderId.into_iden()],
            false,
        )
        .await?;

        use MessageReactions as X;
        manager
            .create_table(
                Table::create()
                    .table(X::Table)
                    .col(uuid(X::Id).primary_key())
                    .col(uuid(X::OrgId))
                    .col(uuid(X::MessageId))
                    .col(string(X::ReactorKind))
                    .col(uuid(X::ReactorId))
                    .col(string(X::Reaction))
                    .col(timestamp_with_time_zone(X::CreatedAt))
                    .foreign_key(&mut org_fk(X::Table, X::OrgId))
                    .foreign_key(&mut cascade(
                        (X::Table, X::MessageId),
                        (Messages::Table, Messages::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_message_reactions",
            X::Table,
            vec![
                X::MessageId.into_iden(),
                X::ReactorId.into_iden(),
                X::Reaction.into_iden(),
            ],
            true,
        )
        .await?;

        use MessageStatusEvents as S;
        manager
            .create_table(
                Table::create()
                    .table(S::Table)
                    .col(uuid(S::Id).primary_key())
                    .col(uuid(S::OrgId))
                    .col(uuid(S::MessageId))
                    .col(string(S::Status))
                    .col(text_null(S::Reason))
                    .col(timestamp_with_time_zone(S::CreatedAt))
                    .foreign_key(&mut org_fk(S::Table, S::OrgId))
                    .foreign_key(&mut cascade(
                        (S::Table, S::MessageId),
                        (Messages::Table, Messages::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_message_status_events_message",
            S::Table,
            vec![S::MessageId.into_iden(), S::CreatedAt.into_iden()],
            false,
        )
        .await?;

        use Attachments as A;
        manager
            .create_table(
                Table::create()
                    .table(A::Table)
                    .col(uuid(A::Id).primary_key())
                    .col(uuid(A::OrgId))
                    .col(uuid_null(A::MessageId))
                    .col(string(A::Filename))
                    .col(string(A::ContentType))
                    .col(big_integer(A::SizeBytes))
                    .col(string(A::Sha256))
                    .col(string(A::StorageKey))
                    .col(uuid_null(A::UploadedBy))
                    .col(timestamp_with_time_zone(A::CreatedAt))
                    .foreign_key(&mut org_fk(A::Table, A::OrgId))
                    .foreign_key(&mut cascade(
                        (A::Table, A::MessageId),
                        (Messages::Table, Messages::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (A::Table, A::UploadedBy),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_attachments_message",
            A::Table,
            vec![A::MessageId.into_iden()],
            false,
        )
        .await?;

        use Notes as N;
        manager
            .create_table(
                Table::create()
                    .table(N::Table)
                    .col(uuid(N::Id).primary_key())
                    .col(uuid(N::OrgId))
                    .col(uuid(N::ConversationId))
                    .col(uuid_null(N::AuthorUserId))
                    .col(text(N::Body))
                    .col(timestamp_with_time_zone(N::CreatedAt))
                    .col(timestamp_with_time_zone(N::UpdatedAt))
                    .foreign_key(&mut org_fk(N::Table, N::OrgId))
                    .foreign_key(&mut cascade(
                        (N::Table, N::ConversationId),
                        (Conversations::Table, Conversations::Id),
                    ))
                    .foreign_key(&mut set_null(
                        (N::Table, N::AuthorUserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_notes_conversation_created",
            N::Table,
            vec![
                N::ConversationId.into_iden(),
                N::CreatedAt.into_iden(),
                N::Id.into_iden(),
            ],
            false,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Notes::Table.into_iden(),
            Attachments::Table.into_iden(),
            MessageStatusEvents::Table.into_iden(),
            MessageReactions::Table.into_iden(),
            ConversationReads::Table.into_iden(),
            ConversationAttributeValues::Table.into_iden(),
            ConversationTags::Table.into_iden(),
            ConversationParticipants::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
