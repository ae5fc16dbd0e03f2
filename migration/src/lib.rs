//! Schema migrations, applied on start (`switchboard migrate` runs them alone).

pub use sea_orm_migration::prelude::*;

mod common;
mod m20261123_000001_foundation;
mod m20261123_000002_tags;
mod m20261123_000003_teams_queues;
mod m20261123_000004_contacts;
mod m20261123_000005_idempotency;
mod m20261123_000006_contact_groups;
mod m20261123_000007_conversations;
mod m20261123_000008_anonymization;
mod m20261123_000009_inbox;
mod m20261123_000010_search;
mod m20261123_000011_presence;
mod m20261124_000012_routing;
mod m20261124_000013_jobs;
mod m20261124_000014_templates;
mod m20261124_000015_webhooks;
mod m20261125_000016_ingest;
mod m20261125_000017_broadcasts;
mod m20261125_000018_webhook_dispatch;
mod m20261125_000019_auto_responders;
mod m20261126_000020_calls;
mod m20261126_000021_call_campaigns;
mod m20261126_000022_rooms;
mod m20261126_000023_metrics;
mod m20261127_000024_online_since;
mod m20261127_000025_routing_waiting;
mod m20261127_000026_contacts_org_id;
mod m20261128_000027_call_agent_leg;
mod m20261129_000028_presence_instances;

pub use m20261123_000010_search::{CONTACT_SEPARATOR, FOLD_FROM, FOLD_TO};

/// All migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_foundation::Migration),
            Box::new(m20261123_000002_tags::Migration),
            Box::new(m20261123_000003_teams_queues::Migration),
            Box::new(m20261123_000004_contacts::Migration),
            Box::new(m20261123_000005_idempotency::Migration),
            Box::new(m20261123_000006_contact_groups::Migration),
            Box::new(m20261123_000007_conversations::Migration),
            Box::new(m20261123_000008_anonymization::Migration),
            Box::new(m20261123_000009_inbox::Migration),
            Box::new(m20261123_000010_search::Migration),
            Box::new(m20261123_000011_presence::Migration),
            Box::new(m20261124_000012_routing::Migration),
            Box::new(m20261124_000013_jobs::Migration),
            Box::new(m20261124_000014_templates::Migration),
            Box::new(m20261124_000015_webhooks::Migration),
            Box::new(m20261125_000016_ingest::Migration),
            Box::new(m20261125_000017_broadcasts::Migration),
            Box::new(m20261125_000018_webhook_dispatch::Migration),
            Box::new(m20261125_000019_auto_responders::Migration),
            Box::new(m20261126_000020_calls::Migration),
            Box::new(m20261126_000021_call_campaigns::Migration),
            Box::new(m20261126_000022_rooms::Migration),
            Box::new(m20261126_000023_metrics::Migration),
            Box::new(m20261127_000024_online_since::Migration),
            Box::new(m20261127_000025_routing_waiting::Migration),
            Box::new(m20261127_000026_contacts_org_id::Migration),
            Box::new(m20261128_000027_call_agent_leg::Migration),
            Box::new(m20261129_000028_presence_instances::Migration),
        ]
    }
}
