//! The `confab` binary: parse the command line, bind, serve until SIGINT or SIGTERM.

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};
use tracing_subscriber::EnvFilter;

use std::io::IsTerminal;

use backend::config::{AdminAction, BotAction, Command, ConfigAction, LogFormat, WebhookAction};
use backend::store::sqlite::backup;
use backend::{Config, shutdown};

/// glibc's malloc keeps a growing set of per-thread arenas under connection churn: 5,000
/// connections opened and closed eight times took the server from 80 to 460 MiB of RSS.
/// mimalloc returns freed pages and keeps it flat (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let loaded =
        backend::config::load(std::env::args_os().collect()).unwrap_or_else(|error| error.exit());
    let config = loaded.config.clone();
    init_logging(config.log_format);
    match &config.command {
        None | Some(Command::Serve) => {}
        Some(Command::Export { file }) => {
            let store = backend::open_store(&config).await.context("cannot open the store")?;
            let count = backend::transfer::export(store.as_ref(), file).await?;
            eprintln!("exported {count} records to {}", file.display());
            return Ok(());
        }
        Some(Command::Import { file }) => {
            let store = backend::open_store(&config).await.context("cannot open the store")?;
            let count = backend::transfer::import(store.as_ref(), file).await?;
            eprintln!("imported {count} records from {}", file.display());
            return Ok(());
        }
        Some(Command::Config { action: ConfigAction::Check }) => {
            if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
                backend::tls::Certificate::load(cert, key)?;
            }
            print!("{}", loaded.effective());
            eprintln!("the configuration is valid");
            return Ok(());
        }
        Some(Command::Bot { action: BotAction::Create { name } }) => {
            shared::chat::validate_username(name)
                .map_err(|reason| anyhow::anyhow!("invalid bot name: {reason}"))?;
            let store = backend::open_store(&config).await.context("cannot open the store")?;
            let token = backend::bots::create_bot(store.as_ref(), name).await?;
            eprintln!("bot {name:?} created; its API token (shown once):");
            println!("{token}");
            return Ok(());
        }
        Some(Command::Bot { action: BotAction::Token { name } }) => {
            let store = backend::open_store(&config).await.context("cannot open the store")?;
            let token = backend::bots::new_bot_token(store.as_ref(), name).await?;
            eprintln!("a new API token for {name:?} (shown once):");
            println!("{token}");
            return Ok(());
        }
        Some(Command::Webhook { action: WebhookAction::Create { room, name } }) => {
            shared::chat::validate_username(name)
                .map_err(|reason| anyhow::anyhow!("invalid bot name: {reason}"))?;
            let store = backend::open_store(&config).await.context("cannot open the store")?;
            let hook = backend::bots::create_webhook(store.as_ref(), room, name, "confab").await?;
            eprintln!(
                "webhook {} of {room:?} posts as the bot {name:?}; its URL path (shown once):",
                hook.id
            );
            println!("{}", hook.path.unwrap_or_default());
            return Ok(());
        }
        Some(Command::Admin { action }) => {
            let (name, admin) = match action {
                AdminAction::Promote { name } => (name, true),
                AdminAction::Demote { name } => (name, false),
            };
            shared::chat::validate_username(name)
                .map_err(|reason| anyhow::anyhow!("invalid user name: {reason}"))?;
            let store = backend::open_store(&config).await.context("cannot open the store")?;
            store.update_account(name, backend::store::AccountChange::Admin(admin)).await?;
            eprintln!("{name} is {} a server admin", if admin { "now" } else { "no longer" });
            return Ok(());
        }
        Some(Command::Backup { file }) => {
            embedded_only(&config, "backup")?;
            let summary = backup::backup(&config.data, file)?;
            eprintln!(
                "backed up {} messages ({} KiB) to {}",
                summary.messages,
                summary.bytes / 1024,
                file.display()
            );
            return Ok(());
        }
        Some(Command::Restore { file }) => {
            embedded_only(&config, "restore")?;
            let summary = backup::restore(file, &config.data)?;
            eprintln!(
                "restored {} messages into {}",
                summary.messages,
                config.data.join("confab.db").display()
            );
            return Ok(());
        }
    }
    let listener =
        bind(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr().context("listener has no local address")?;
    tracing::info!(static_dir = %config.static_dir.display(), "serving");
    let scheme = if config.tls_cert.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{address}/");
    match config.log_format {
        LogFormat::Text => println!("Confab is running: open {url}"),
        // Every line of a JSON log is JSON.
        LogFormat::Json => tracing::info!(url, "Confab is running"),
    }
    backend::run(listener, config, shutdown::signal()).await.context("server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Log lines go to standard output, as text or JSON, at the level `RUST_LOG` sets (`info`
/// by default). Lines about a connection carry its span: `connection{id user}`.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stdout().is_terminal()).init(),
        LogFormat::Json => {
            builder.json().flatten_event(true).with_current_span(true).with_span_list(false).init()
        }
    }
}

/// `confab backup` and `confab restore` work on the embedded store only.
fn embedded_only(config: &Config, command: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.postgres.is_none(),
        "`confab {command}` copies the embedded store; with PostgreSQL use `pg_dump` / \
         `pg_restore`, or `confab export` / `confab import`"
    );
    Ok(())
}

/// Binds with a deep accept queue: with the default of 128, a burst of new connections (a
/// reconnect storm after a restart) overflowed it and each dropped SYN cost its client a
/// one-second retransmit.
fn bind(address: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(4096)
}
