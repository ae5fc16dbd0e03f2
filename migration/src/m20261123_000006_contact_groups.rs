//! Contact groups: static members plus optional rules (Multisender groups and filters, Text
//! Request groups, courier individual groups).

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ContactGroups {
    Table,
    Id,
    OrgId,
    Name,
    NameKey,
    Description,
    Rules,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ContactGroupMembers {
    Table,
    GroupId,
    ContactId,
    OrgId,
    AddedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ContactGroups as G;
        manager
            .create_table(
                Table::create()
                    .table(G::Table)
                    .col(uuid(G::Id).primary_key())
                    .col(uuid(G::OrgId))
                    .col(string(G::Name))
                    .col(string(G::NameKey))
                    .col(text_null(G::Description))
                    .col(json(G::Rules))
                    .col(timestamp_with_time_zone(G::CreatedAt))
                    .col(timestamp_with_time_zone(G::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (G::Table, G::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // Names are unique per organization regardless of case; the list is ordered by this key.
        index(
            manager,
            "ux_contact_groups_org_name_key",
            G::Table,
            vec![G::OrgId.into_iden(), G::NameKey.into_iden()],
            true,
        )
        .await?;

        use ContactGroupMembers as M;
        manager
            .create_table(
                Table::create()
                    .table(M::Table)
                    .col(uuid(M::GroupId))
                    .col(uuid(M::ContactId))
                    .col(uuid(M::OrgId))
                    .col(timestamp_with_time_zone(M::AddedAt))
                    .primary_key(Index::create().col(M::GroupId).col(M::ContactId))
                    .foreign_key(&mut cascade((M::Table, M::GroupId), (G::Table, G::Id)))
                    .foreign_key(&mut cascade(
                        (M::Table, M::ContactId),
                        (Contacts::Table, Contacts::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (M::Table, M::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // A page of contacts' static memberships (and the organization foreign key).
        index(
            manager,
            "ix_contact_group_members_org_contact",
            M::Table,
            vec![M::OrgId.into_iden(), M::ContactId.into_iden()],
            false,
        )
        .await?;
        index(
            manager,
            // The contact foreign key (deleting a contact).
            "ix_contact_group_members_contact",
            M::Table,
            vec![M::ContactId.into_iden()],
            false,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ContactGroupMembers::Table.into_iden(),
            ContactGroups::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
