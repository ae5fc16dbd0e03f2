use sea_orm::entity::prelude::*;

/// A staff member who signs in. Removing a user deactivates it; history stays.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    /// Lower-cased; unique per organization.
    pub email: String,
    pub display_name: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub middle_name: Option<String>,
    pub avatar_url: Option<String>,
    pub phone: Option<String>,
    /// JSON array of strings.
    pub additional_emails: Json,
    /// JSON array of strings.
    pub additional_phones: Json,
    /// Comma-separated role names, e.g. `ADMIN,AGENT`.
    pub roles: String,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    /// `ACTIVE` or `DEACTIVATED`.
    pub status: String,
    /// Argon2 PHC string; never leaves the server.
    pub password_hash: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deactivated_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organization::Entity",
        from = "Column::OrgId",
        to = "super::organization::Column::Id"
    )]
    Organization,
    #[sea_orm(has_many = "super::api_token::Entity")]
    ApiToken,
}

impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl Related<super::api_token::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ApiToken.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
