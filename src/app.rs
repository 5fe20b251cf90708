//! Builds the shared state and the router, binds the listener, and serves (plain HTTP or
//! TLS with rustls, with the connection limits of `[server]`: `serve`). `App::build` returns
//! the bound address so tests can start the real server on port 0. The probes and metrics
//! are `ops`; a push source's own mutual-TLS listener is `push_listener`; the background
//! tasks run under `supervise`.

pub mod ops;
mod push_listener;
pub mod retention;
mod serve;
pub mod supervise;

use crate::authn::{Authn, LogoutNotifier, password::PasswordHasher};
use crate::clock::Clock;
use crate::config::{BankIdEnvironment, Config, Mode};
use crate::keys::{Kek, KeyStore};
use crate::oidc::{Op, logout::BackChannel};
use crate::saml::{Idp, slo::FrontChannel};
use crate::storage::Db;
use crate::web;
use anyhow::Context;
use axum::Router;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;

/// The shared state: cheap handles, built once.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub keys: KeyStore,
    pub authn: Authn,
    pub op: Op,
    pub idp: Idp,
    pub http: reqwest::Client,
    /// The built-in BankID stub, when `[bankid]` enables it (mounted at `/bankid-stub`).
    pub bankid_stub: Option<crate::sim::bankid::Stub>,
    /// The one clock: every handler and task takes `now` from it (tests move it).
    pub clock: Clock,
    /// Readiness, the supervised tasks, the metrics listener's address.
    pub ops: ops::Ops,
    /// The EGIL SCIM server, when a push source is configured.
    pub scim: Option<crate::scim::Scim>,
}

pub struct App {
    pub state: AppState,
    pub addr: SocketAddr,
    router: Router,
    listener: std::net::TcpListener,
    /// `[metrics] listen`: its own listener and router.
    metrics: Option<(std::net::TcpListener, Router)>,
    /// `[sync.sources.NAME] listen`: each push source's own mutual-TLS listener and router.
    push_listeners: Vec<(push_listener::PushListener, Router)>,
    /// `[tls]`, loaded in `build` so a bad certificate fails the start before "listening".
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// Finds or (in development) creates the key-encryption key.
pub fn load_kek(config: &Config) -> anyhow::Result<Kek> {
    let make = "make one with (umask 077; openssl rand -hex 32 > /etc/portvakt/kek.hex)";
    let path = match (&config.kek_file, config.mode) {
        (Some(p), _) => p.clone(),
        (None, Mode::Production) => anyhow::bail!(
            "invalid setting kek_file: required in production mode; set kek_file (or \
             PORTVAKT_KEK_FILE) to the key-encryption key's file, or {make}"
        ),
        (None, Mode::Development) => config.data_dir.join("kek.hex"),
    };
    if path.exists() {
        return Kek::load(&path).map_err(|e| anyhow::anyhow!("invalid setting kek_file: {e}"));
    }
    if config.mode == Mode::Production {
        anyhow::bail!(
            "invalid setting kek_file: {} does not exist (production mode never creates one); \
             point kek_file at the existing key-encryption key, or for a new installation {make}",
            path.display()
        );
    }
    tracing::warn!(path = %path.display(), "creating a new key-encryption key (development mode)");
    Ok(Kek::create(&path)?)
}

/// Connects without touching the schema (`migrate`, `backup`).
pub async fn connect_db(config: &Config) -> anyhow::Result<Db> {
    Db::connect_with(
        &config.database_url,
        config.database.max_connections,
        std::time::Duration::from_secs(config.database.acquire_timeout),
    )
    .await
    .context("cannot open the database")
}

/// Connects, and brings the schema up to this release: development mode migrates;
/// production mode only checks and refuses an older (or newer) schema, so a new binary never
/// changes the schema under instances of the old one (`portvakt migrate` does, on purpose).
pub async fn open_db(config: &Config) -> anyhow::Result<Db> {
    let db = connect_db(config).await?;
    if config.mode == Mode::Development {
        db.migrate().await.context("database migration failed")?;
    } else {
        let schema = db
            .schema()
            .await
            .context("cannot read the schema version")?;
        if schema != crate::storage::schema::Schema::Current {
            anyhow::bail!("{schema}");
        }
    }
    Ok(db)
}

/// Opens the key store (creating keys and secrets on first start).
pub async fn open_keys(config: &Config, db: &Db, now: i64) -> anyhow::Result<KeyStore> {
    open_keys_with(config, db, load_kek(config)?, now).await
}

async fn open_keys_with(config: &Config, db: &Db, kek: Kek, now: i64) -> anyhow::Result<KeyStore> {
    let t = &config.tokens;
    let retire_after = t.access_ttl.max(t.id_ttl) + t.clock_skew;
    Ok(KeyStore::open(
        db.clone(),
        kek,
        config.keys.reload_interval,
        retire_after,
        now,
    )
    .await?)
}

impl App {
    /// Binds `config.listen` and builds the application.
    pub async fn build(config: Config, demo: bool) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        Self::build_on(config, demo, listener).await
    }

    /// Builds the application on a listener bound by the caller (tests bind port 0 first so
    /// the issuer URL can name the port).
    pub async fn build_on(
        config: Config,
        demo: bool,
        listener: std::net::TcpListener,
    ) -> anyhow::Result<Self> {
        Self::build_with_clock(config, demo, listener, Clock::system()).await
    }

    /// `build_on` with the clock the application reads (tests give a movable one).
    pub async fn build_with_clock(
        config: Config,
        demo: bool,
        listener: std::net::TcpListener,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        // One TLS stack with one provider: ring (DEPENDENCIES.md §8).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = Arc::new(config);
        let tls = match &config.tls {
            Some(tls) => Some(Arc::new(serve::tls_config(&tls.cert, &tls.key, None)?)),
            None => None,
        };
        // Bound before anything else, like the main listener: a taken port fails the start.
        let metrics_listener = match config.metrics.listen {
            Some(addr) => {
                let l = std::net::TcpListener::bind(addr).with_context(|| {
                    format!("cannot listen on {addr} ([metrics] listen): is the port free?")
                })?;
                l.set_nonblocking(true)?;
                Some(l)
            }
            None => None,
        };
        let metrics_addr = match &metrics_listener {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };
        let push_listeners = push_listener::bind(&config)?;
        let mut push_addrs = std::collections::BTreeMap::new();
        for p in &push_listeners {
            push_addrs.insert(p.source.clone(), p.listener.local_addr()?);
        }
        // The KEK first: a production start without one fails before touching the database.
        let kek = load_kek(&config)?;
        let db = open_db(&config).await?;
        let keys = open_keys_with(&config, &db, kek, clock.now()).await?;
        let applied =
            crate::authn::upstream::apply_config(&db, &keys, &config.upstreams, clock.now())
                .await?;
        if !applied.is_empty() {
            tracing::info!(upstreams = ?applied, "upstreams from the config file applied");
        }
        let applied =
            crate::authn::policy::apply_config(&db, &config.login_policies, None, clock.now())
                .await
                .map_err(anyhow::Error::msg)?;
        if !applied.is_empty() {
            tracing::info!(relying_parties = ?applied, "login policies from the config file applied");
        }
        let p = &config.password;
        let hasher = PasswordHasher::new(
            p.memory_kib,
            p.iterations,
            p.parallelism,
            config.password_workers(),
            config.password_queue(),
        )?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        let authn = Authn::new(
            db.clone(),
            config.clone(),
            keys.clone(),
            hasher,
            clock.clone(),
        );
        let op = Op::new(db.clone(), keys.clone(), config.clone(), authn.clone());
        // Single logout: each protocol front ends its part of a session.
        let idp = Idp::new(
            db.clone(),
            keys.clone(),
            config.clone(),
            authn.clone(),
            http.clone(),
        );
        let notifiers: Vec<Arc<dyn LogoutNotifier>> = vec![
            Arc::new(BackChannel {
                op: op.clone(),
                http: http.clone(),
            }),
            Arc::new(FrontChannel { idp: idp.clone() }),
            // Last: logging out at an upstream leaves our pages for good.
            Arc::new(crate::login::UpstreamLogout {
                login: crate::login::Login::new(
                    authn.clone(),
                    config.clone(),
                    keys.clone(),
                    http.clone(),
                ),
            }),
        ];
        let mut authn = authn.with_notifiers(notifiers);
        if config.bankid.enabled {
            let client = crate::bankid::Client::from_config(&config)
                .context("cannot set up the BankID client")?;
            let stub_app = (config.bankid.environment == BankIdEnvironment::Stub).then(|| {
                let app = crate::sim::bankid::APP;
                format!("{}{}{app}?", config.issuer, web::paths::BANKID_STUB)
            });
            authn = authn.with_bankid(client, stub_app);
        }
        let op = Op::new(db.clone(), keys.clone(), config.clone(), authn.clone());
        let idp = Idp::new(
            db.clone(),
            keys.clone(),
            config.clone(),
            authn.clone(),
            http.clone(),
        );
        let mut state = AppState {
            config: config.clone(),
            db: db.clone(),
            keys,
            authn,
            op,
            idp,
            http,
            bankid_stub: None,
            clock: clock.clone(),
            ops: ops::Ops::new(&config, metrics_addr, push_addrs),
            scim: None,
        };
        let pushes = crate::sync::push::Pushes::new(
            db.clone(),
            config.clone(),
            clock.clone(),
            state.keys.clone(),
        );
        state.scim =
            crate::scim::Scim::new(&config, db.clone(), pushes).map_err(anyhow::Error::msg)?;

        if demo {
            crate::demo::seed(&state).await?;
        }
        let b = &config.bankid;
        if b.enabled && b.environment == BankIdEnvironment::Stub {
            // In the demo, the app offers the demo people's personal numbers.
            let suggestions = if demo {
                crate::demo::bankid_suggestions(&db).await?
            } else {
                Vec::new()
            };
            state.bankid_stub = Some(crate::sim::bankid::Stub::from_config(
                &config,
                suggestions,
                clock.clone(),
            ));
        }
        let router = router(&state, demo);
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let metrics = metrics_listener.map(|l| (l, ops::metrics_router(&state)));
        let mut push_served = Vec::new();
        for p in push_listeners {
            // A push source exists, so the SCIM server does.
            let scim = state
                .scim
                .as_ref()
                .context("a push source's listener without the SCIM server")?;
            let router = push_listener::router(&state, scim, &p.source);
            push_served.push((p, router));
        }
        spawn_tasks(&state);
        Ok(Self {
            state,
            addr,
            router,
            listener,
            metrics,
            push_listeners: push_served,
            tls,
        })
    }

    /// Serves until `shutdown` completes, with the connection limits of `[server]`, then
    /// drains open requests on every listener (the main one, `[metrics] listen` and each push
    /// source's) for at most `request_timeout`. Readiness answers 503 from the moment
    /// shutdown begins.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let config = self.state.config.clone();
        let tls = self.tls;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let draining = self.state.ops.draining.clone();
        let signal = async move {
            shutdown.await;
            draining.store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::info!("shutting down: no new connections, draining open requests");
            let _ = stop.send(true);
        };
        // Also ends when the sender is gone, so a listener never outlives the signal.
        let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let main = serve::serve(
            self.listener,
            self.router,
            &config.server,
            tls,
            until(stopped.clone()),
        );
        // The other listeners, each with its own connection cap, like the main one.
        let mut sides = tokio::task::JoinSet::new();
        let metrics = self.metrics.map(|(l, r)| (l, r, None));
        let pushes = self.push_listeners.into_iter();
        let pushes = pushes.map(|(p, r)| (p.listener, r, Some(p.tls)));
        for (l, router, tls) in metrics.into_iter().chain(pushes) {
            let (config, stop) = (config.clone(), until(stopped.clone()));
            sides.spawn(async move { serve::serve(l, router, &config.server, tls, stop).await });
        }
        let side = async move {
            let mut result = Ok(());
            while let Some(done) = sides.join_next().await {
                result = result.and(done.map_err(anyhow::Error::from).and_then(|r| r));
            }
            result
        };
        let ((), main, side) = tokio::join!(signal, main, side);
        main.and(side)
    }
}

fn router(state: &AppState, demo: bool) -> Router {
    let mut app = Router::new()
        .merge(crate::oidc::routes::routes().with_state(state.op.clone()))
        .merge(crate::login::routes().with_state(crate::login::Login::new(
            state.authn.clone(),
            state.config.clone(),
            state.keys.clone(),
            state.http.clone(),
        )))
        .merge(crate::saml::routes::routes().with_state(state.idp.clone()))
        .merge(crate::admin::routes().with_state(crate::admin::Admin::new(
            state.authn.clone(),
            state.config.clone(),
            state.keys.clone(),
            state.db.clone(),
            state.http.clone(),
        )))
        .route(web::paths::STYLESHEET, get(web::stylesheet))
        .merge(ops::routes(state))
        .route(
            web::paths::HOME,
            get(move |axum::extract::Extension(lang)| web::home(demo, lang)),
        );
    if demo {
        app = app.merge(crate::demo::routes().with_state(state.clone()));
    }
    if let Some(stub) = &state.bankid_stub {
        app = app.nest(web::paths::BANKID_STUB, stub.router());
    }
    if let Some(scim) = &state.scim {
        // A StudentGroup lists its members: larger bodies than a form's.
        let limit = state.config.sync.push_body_limit;
        app = app.merge(
            crate::scim::routes()
                .with_state(scim.clone())
                .layer(axum::extract::DefaultBodyLimit::max(limit)),
        );
    }
    let edge = web::EdgeConfig {
        trusted_proxies: Arc::new(state.config.trusted_proxies.clone()),
        tls: state.config.secure_cookies(),
    };
    app.fallback(web::not_found)
        // The SSO cookie's value for every front, and its removal when a front ended it.
        .layer(axum::middleware::from_fn_with_state(
            state.config.clone(),
            crate::login::cookies::layer,
        ))
        // Inside the edge, so a timed-out request is still logged and gets an error page.
        .layer(axum::middleware::from_fn_with_state(
            serve::Deadlines::new(&state.config.server),
            serve::deadlines,
        ))
        // Outside the deadlines, so a timed-out request is counted with its 503.
        .layer(axum::middleware::from_fn(ops::track))
        // Outermost: sees every request and response, including the fallback's.
        .layer(axum::middleware::from_fn_with_state(edge, web::edge))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
}

/// The background tasks, each supervised (restarted after a panic).
fn spawn_tasks(state: &AppState) {
    let tasks = &state.ops.tasks;
    let (db, clock) = (state.db.clone(), state.clock.clone());
    let retention = state.config.retention.clone();
    tasks.spawn("housekeeping", move || {
        housekeeping(db.clone(), clock.clone(), retention.clone())
    });
    if state.db.backend() == crate::storage::Backend::Sqlite {
        let db = state.db.clone();
        tasks.spawn("wal_checkpoint", move || wal_checkpoints(db.clone()));
    }
    let idp = state.idp.clone();
    tasks.spawn("metadata_refresh", move || metadata_refresh(idp.clone()));
    let (db, config, clock) = (state.db.clone(), state.config.clone(), state.clock.clone());
    let keys = state.keys.clone();
    if crate::sync::schedule(db.clone(), config.clone(), clock.clone(), keys.clone()).is_some() {
        tasks.spawn("sync_schedule", move || {
            let schedule =
                crate::sync::schedule(db.clone(), config.clone(), clock.clone(), keys.clone());
            async move {
                if let Some(s) = schedule {
                    s.await;
                }
            }
        });
    }
}

/// Every second (SQLite): a PASSIVE checkpoint of the WAL, so the requests' commits do not
/// do it (`storage::Db::checkpoint`).
async fn wal_checkpoints(db: Db) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = db.checkpoint().await {
            tracing::debug!("WAL checkpoint failed: {}", crate::error_chain(&e));
        }
    }
}

/// Every minute: SP metadata registered from a URL is fetched again when due.
async fn metadata_refresh(idp: crate::saml::Idp) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let every = idp.config.saml.metadata_refresh;
        let allow_http = idp.config.mode == Mode::Development;
        if let Err(e) =
            crate::saml::sp::refresh_due(&idp.db, &idp.http, every, allow_http, idp.clock().now())
                .await
        {
            tracing::warn!("metadata refresh failed: {}", crate::error_chain(&e));
        }
    }
}

/// Every minute: a WAL checkpoint (SQLite); every ten minutes: drops expired rows and
/// purges records past their retention. Idempotent, so every instance may run it.
async fn housekeeping(db: Db, clock: Clock, retention: crate::config::RetentionConfig) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    let mut round: u64 = 0;
    loop {
        tick.tick().await;
        round += 1;
        if let Err(e) = db.maintain().await {
            tracing::warn!("database maintenance failed: {}", crate::error_chain(&e));
        }
        if round % 10 != 1 {
            continue;
        }
        let now = clock.now();
        let r1 = crate::storage::tokens::purge_expired(&db, now).await;
        let r2 = crate::storage::sessions::purge_expired(&db, now).await;
        let r3 = crate::storage::throttle::purge(&db, now - 86_400).await;
        let r4 = crate::storage::saml::purge_expired(&db, now).await;
        let r5 = crate::storage::bankid::purge_expired(&db, now).await;
        let r6 = crate::storage::upstream::purge_expired(&db, now).await;
        // [admin] idle_timeout is at most a day.
        let r7 = crate::storage::admin::purge_idle(&db, now - 86_400).await;
        let r8 = retention::purge(&db, &retention, now).await;
        let failed = r1.err().or(r2.err()).or(r3.err()).or(r4.err());
        if let Some(e) = failed.or(r5.err()).or(r6.err()).or(r7.err()).or(r8.err()) {
            tracing::warn!("housekeeping failed: {}", crate::error_chain(&e));
        }
    }
}
