use sea_orm::entity::prelude::*;

/// A person the organization talks to (end user, individual, account).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub display_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub middle_name: Option<String>,
    /// Lower-cased primary email.
    pub email: Option<String>,
    /// Primary phone (E.164).
    pub phone: Option<String>,
    /// JSON array of strings.
    pub additional_emails: Json,
    /// JSON array of strings.
    pub additional_phones: Json,
    pub avatar_url: Option<String>,
    /// Unique per organization when set.
    pub external_id: Option<String>,
    pub company: Option<String>,
    /// JSON object: street, city, postalCode, region, country.
    pub address: Json,
    pub note: Option<String>,
    pub birth_date: Option<Date>,
    /// JSON object: channel type → `{status, at, source}`.
    pub consent: Json,
    /// Lower-cased name (or email, phone) for ordering by name.
    pub sort_name: String,
    pub last_contacted_at: Option<DateTimeUtc>,
    /// Sort key for "last contacted, oldest first": `last_contacted_at`, or the far future when
    /// never contacted (nulls last). Keep in step with `last_contacted_at`.
    pub last_contacted_asc: DateTimeUtc,
    /// Sort key for "last contacted, newest first": `last_contacted_at`, or the far past when
    /// never contacted (nulls last). Keep in step with `last_contacted_at`.
    pub last_contacted_desc: DateTimeUtc,
    pub anonymized_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
