//! Contacts, their tags and custom attribute values, and custom attribute definitions.

use sea_orm_migration::{prelude::*, schema::*};

use crate::common::{cascade, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CustomAttributeDefinitions {
    Table,
    Id,
    OrgId,
    Entity,
    Identifier,
    Label,
    Description,
    ValueType,
    Options,
    Required,
    Archived,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
    OrgId,
    DisplayName,
    FirstName,
    LastName,
    MiddleName,
    Email,
    Phone,
    AdditionalEmails,
    AdditionalPhones,
    AvatarUrl,
    ExternalId,
    Company,
    Address,
    Note,
    BirthDate,
    Consent,
    SortName,
    LastContactedAt,
    LastContactedAsc,
    LastContactedDesc,
    AnonymizedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ContactTags {
    Table,
    ContactId,
    TagId,
    OrgId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ContactAttributeValues {
    Table,
    ContactId,
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
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Tags {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use CustomAttributeDefinitions as D;
        manager
            .create_table(
                Table::create()
                    .table(D::Table)
                    .col(uuid(D::Id).primary_key())
                    .col(uuid(D::OrgId))
                    .col(string(D::Entity))
                    .col(string(D::Identifier))
                    .col(string(D::Label))
                    .col(text_null(D::Description))
                    .col(string(D::ValueType))
                    .col(json(D::Options))
                    .col(boolean(D::Required))
                    .col(boolean(D::Archived))
                    .col(timestamp_with_time_zone(D::CreatedAt))
                    .col(timestamp_with_time_zone(D::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (D::Table, D::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_custom_attribute_definitions_identifier",
            D::Table,
            vec![
                D::OrgId.into_iden(),
                D::Entity.into_iden(),
                D::Identifier.into_iden(),
            ],
            true,
        )
        .await?;

        use Contacts as C;
        manager
            .create_table(
                Table::create()
                    .table(C::Table)
                    .col(uuid(C::Id).primary_key())
                    .col(uuid(C::OrgId))
                    .col(string_null(C::DisplayName))
                    .col(string_null(C::FirstName))
                    .col(string_null(C::LastName))
                    .col(string_null(C::MiddleName))
                    .col(string_null(C::Email))
                    .col(string_null(C::Phone))
                    .col(json(C::AdditionalEmails))
                    .col(json(C::AdditionalPhones))
                    .col(string_null(C::AvatarUrl))
                    .col(string_null(C::ExternalId))
                    .col(string_null(C::Company))
                    .col(json(C::Address))
                    .col(text_null(C::Note))
                    .col(date_null(C::BirthDate))
                    .col(json(C::Consent))
                    .col(string(C::SortName))
                    .col(timestamp_with_time_zone_null(C::LastContactedAt))
                    .col(timestamp_with_time_zone(C::LastContactedAsc))
                    .col(timestamp_with_time_zone(C::LastContactedDesc))
                    .col(timestamp_with_time_zone_null(C::AnonymizedAt))
                    .col(timestamp_with_time_zone(C::CreatedAt))
                    .col(timestamp_with_time_zone(C::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (C::Table, C::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            (
                "ux_contacts_org_external_id",
                vec![C::OrgId.into_iden(), C::ExternalId.into_iden()],
                true,
            ),
            (
                "ix_contacts_org_created",
                vec![
                    C::OrgId.into_iden(),
                    C::CreatedAt.into_iden(),
                    C::Id.into_iden(),
                ],
                false,
            ),
            (
                "ix_contacts_org_sort_name",
                vec![
                    C::OrgId.into_iden(),
                    C::SortName.into_iden(),
                    C::Id.into_iden(),
                ],
                false,
            ),
            (
                "ix_contacts_org_last_contacted_asc",
                vec![
                    C::OrgId.into_iden(),
                    C::LastContactedAsc.into_iden(),
                    C::Id.into_iden(),
                ],
                false,
            ),
            (
                "ix_contacts_org_last_contacted_desc",
                vec![
                    C::OrgId.into_iden(),
                    C::LastContactedDesc.into_iden(),
                    C::Id.into_iden(),
                ],
                false,
            ),
            (
                "ix_contacts_org_email",
                vec![C::OrgId.into_iden(), C::Email.into_iden()],
                false,
            ),
            (
                "ix_contacts_org_phone",
                vec![C::OrgId.into_iden(), C::Phone.into_iden()],
                false,
            ),
        ] {
            index(manager, name, C::Table, columns, unique).await?;
        }

        use ContactTags as T;
        manager
            .create_table(
                Table::create()
                    .table(T::Table)
                    .col(uuid(T::ContactId))
                    .col(uuid(T::TagId))
                    .col(uuid(T::OrgId))
                    .col(timestamp_with_time_zone(T::CreatedAt))
                    .primary_key(Index::create().col(T::ContactId).col(T::TagId))
                    .foreign_key(&mut cascade((T::Table, T::ContactId), (C::Table, C::Id)))
                    .foreign_key(&mut cascade((T::Table, T::TagId), (Tags::Table, Tags::Id)))
                    .foreign_key(&mut cascade(
                        (T::Table, T::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_contact_tags_tag",
            T::Table,
            vec![T::TagId.into_iden(), T::ContactId.into_iden()],
            false,
        )
        .await?;
        index(
            manager,
            "ix_contact_tags_org",
            T::Table,
            vec![T::OrgId.into_iden()],
            false,
        )
        .await?;

        use ContactAttributeValues as V;
        manager
            .create_table(
                Table::create()
                    .table(V::Table)
                    .col(uuid(V::ContactId))
                    .col(uuid(V::DefinitionId))
                    .col(uuid(V::OrgId))
                    .col(string(V::Identifier))
                    .col(text_null(V::TextValue))
                    .col(double_null(V::NumberValue))
                    .col(boolean_null(V::BoolValue))
                    .col(date_null(V::DateValue))
                    .col(timestamp_with_time_zone(V::UpdatedAt))
                    .primary_key(Index::create().col(V::ContactId).col(V::DefinitionId))
                    .foreign_key(&mut cascade((V::Table, V::ContactId), (C::Table, C::Id)))
                    .foreign_key(&mut cascade((V::Table, V::DefinitionId), (D::Table, D::Id)))
                    .foreign_key(&mut cascade(
                        (V::Table, V::OrgId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // Rules compare one typed column of one attribute: an index per typed column.
        for (name, value) in [
            ("ix_contact_attribute_values_text", V::TextValue),
            ("ix_contact_attribute_values_number", V::NumberValue),
            ("ix_contact_attribute_values_bool", V::BoolValue),
            ("ix_contact_attribute_values_date", V::DateValue),
        ] {
            index(
                manager,
                name,
                V::Table,
                vec![
                    V::OrgId.into_iden(),
                    V::Identifier.into_iden(),
                    value.into_iden(),
                ],
                false,
            )
            .await?;
        }
        index(
            manager,
            "ix_contact_attribute_values_definition",
            V::Table,
            vec![V::DefinitionId.into_iden()],
            false,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ContactAttributeValues::Table.into_iden(),
            ContactTags::Table.into_iden(),
            Contacts::Table.into_iden(),
            CustomAttributeDefinitions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
