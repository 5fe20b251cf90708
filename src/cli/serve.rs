//! `serve` and `demo`: build the application and serve it until Ctrl-C or SIGTERM, then
//! drain open requests (readiness answers 503 meanwhile) and exit 0.

use crate::app::App;
use crate::config::{Config, Mode};
use anyhow::bail;

/// `demo`: refused in production mode; logs in with the BankID stub unless BankID is
/// configured.
pub(super) async fn demo(config: Config) -> anyhow::Result<()> {
    if config.mode == Mode::Production {
        bail!("demo is refused in production mode");
    }
    let mut config = config;
    // The demo logs in with the built-in BankID stub unless BankID is configured.
    if !config.bankid.enabled {
        config.bankid.enabled = true;
        config.bankid.environment = crate::config::BankIdEnvironment::Stub;
    }
    let listener = std::net::TcpListener::bind(config.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let app = crate::demo::build(config, listener, crate::clock::Clock::system()).await?;
    run(app, true).await
}

pub(super) async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    run(App::build(config, demo).await?, demo).await
}

async fn run(app: App, demo: bool) -> anyhow::Result<()> {
    let issuer = app.state.config.issuer.clone();
    let shutdown = shutdown_signal();
    let scheme = if app.state.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    if demo {
        let stub = app.state.bankid_stub.is_some();
        println!("{}", crate::demo::banner(&issuer, stub));
    }
    println!(
        "Portvakt listening on {scheme}://{} (issuer {issuer})",
        app.addr
    );
    if let Some(addr) = app.state.ops.metrics_addr {
        println!("Metrics on http://{addr}/metrics");
    }
    app.run_until(shutdown).await
}

/// Ctrl-C, or SIGTERM from systemd or a container runtime: stop accepting and drain. The
/// handlers are registered when this is called, not at the first poll, so a signal that
/// arrives right after the "listening" line already stops gracefully.
pub(super) fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            match (term, int) {
                (Some(mut term), Some(mut int)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
