//! The command line: `serve` (default), `migrate`, `schema`, `org create`, `seed-demo`.

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::organizations::service::{self as orgs, NewOrganization};

/// Switchboard: a self-hosted communications platform with one GraphQL API.
#[derive(Parser, Debug)]
#[command(name = "switchboard", version, about)]
pub struct Cli {
    /// Server configuration (flags or `SWITCHBOARD_*` variables).
    #[command(flatten)]
    pub config: Config,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Manage organizations.
    Org {
        /// What to do with organizations.
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Create the demo organization (even when the database is not empty) and print its token.
    SeedDemo,
}

/// Organization subcommands.
#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Create an organization with an owner and print the owner's API token.
    Create {
        /// Name of the organization.
        #[arg(long)]
        name: String,
        /// Email of the owner.
        #[arg(long)]
        owner_email: String,
        /// Display name of the owner.
        #[arg(long)]
        owner_name: Option<String>,
        /// URL-safe handle; derived from the name when omitted.
        #[arg(long)]
        slug: Option<String>,
        /// IANA timezone.
        #[arg(long)]
        timezone: Option<String>,
    },
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Schema => {
            print!("{}", crate::graphql::sdl());
            Ok(())
        }
        Command::Migrate => {
            crate::telemetry::init(&config);
            let db = crate::db::connect(&config).await?;
            crate::db::migrate(&db).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Org {
            command:
                OrgCommand::Create {
                    name,
                    owner_email,
                    owner_name,
                    slug,
                    timezone,
                },
        } => {
            crate::telemetry::init(&config);
            let db = crate::db::connect(&config).await?;
            crate::db::migrate(&db).await?;
            let created = orgs::create_with_owner(
                &db,
                NewOrganization {
                    name,
                    slug,
                    timezone,
                    locale: None,
                    owner_email,
                    owner_name,
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!(e.public_message()))?;
            println!(
                "organization: {} ({})",
                created.organization.name, created.organization.slug
            );
            println!("owner:        {}", created.owner.email);
            println!("owner token:  {}", created.owner_token);
            Ok(())
        }
        Command::SeedDemo => {
            crate::telemetry::init(&config);
            let db = crate::db::connect(&config).await?;
            crate::db::migrate(&db).await?;
            let token = seed_demo(&db, true).await?;
            print_demo(token.as_deref(), &config);
            Ok(())
        }
        Command::Serve => serve(config).await,
    }
}

/// Creates the demo organization when the database is empty (or always with `force`), returning
/// the owner's token when it was created.
pub async fn seed_demo(
    db: &sea_orm::DatabaseConnection,
    force: bool,
) -> anyhow::Result<Option<String>> {
    if !force
        && !orgs::is_empty(db)
            .await
            .map_err(|e| anyhow::anyhow!(e.public_message()))?
    {
        return Ok(None);
    }
    let slug = if force {
        format!("demo-{}", &uuid::Uuid::now_v7().simple().to_string()[24..])
    } else {
        "demo".to_string()
    };
    let created = orgs::create_with_owner(
        db,
        NewOrganization {
            name: "Demo".into(),
            slug: Some(slug),
            timezone: Some("UTC".into()),
            locale: None,
            owner_email: "owner@demo.example.com".into(),
            owner_name: Some("Demo Owner".into()),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!(e.public_message()))?;
    Ok(Some(created.owner_token))
}

fn print_demo(token: Option<&str>, config: &Config) {
    let base = format!("http://{}", config.listen);
    if let Some(token) = token {
        println!();
        println!("  Demo organization created. Owner: owner@demo.example.com");
        println!("  Owner API token: {token}");
        println!("  Send it as: Authorization: Bearer {token}");
    }
    if config.graphiql {
        println!("  GraphiQL: {base}/graphiql");
    }
    println!("  GraphQL endpoint: {base}/graphql");
    println!();
}

async fn serve(config: Config) -> anyhow::Result<()> {
    crate::telemetry::init(&config);
    let app = crate::build_app(config.clone()).await?;
    let token = if config.demo {
        seed_demo(&app.state.db, false).await?
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(address = %config.listen, "listening");
    print_demo(token.as_deref(), &config);
    if token.is_none() && config.demo {
        println!(
            "  (The database already has organizations; `switchboard org create` makes another.)"
        );
    }
    app.serve(listener, crate::shutdown_signal()).await
}
