//! Serving: the web page, signaling and the echo user on one listener, with the embedded
//! TURN server beside them.
//!
//! Bind outside, run inside: [`run`] serves on a listener it is given until `shutdown`
//! is cancelled, so `main` and the tests start the very same server.
//!
//! ```text
//!  main ──bind──► TcpListener ──► run(listener, tls, shutdown)
//!                                   ├─ http::serve (HTTP or HTTPS, limits) ─► web::app
//!                                   └─ Signaling (connection tasks, timer)
//!  Ctrl-C / SIGTERM ──► shutdown.cancel() ──► clients get close 1001 ──► run returns
//! ```

use std::sync::Arc;
use std::time::Duration;

pub mod metrics;
pub mod reload;
pub mod shell;
pub mod web;

use anyhow::Context;
use duet_signal::HubConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use std::net::SocketAddr;

use crate::access::Access;
use crate::acme::Acme;
use crate::acme::redirect::Redirect;
use crate::cluster::Cluster;
use crate::config::{EmbeddedTurn, IceSettings, TurnMode};
use crate::limits::HttpLimits;
use crate::limits::SignalingLimits;
use crate::signaling::Signaling;
use crate::signaling::echo::EchoConfig;
use crate::signaling::ice::IceServers;
use crate::turn::{DriverConfig, Turn};

/// What `run` needs besides the listener.
#[derive(Debug)]
pub struct RunOptions {
    /// HTTPS and WSS when set (and TURN over TLS, with the same certificate).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How long to wait for connections to close after shutdown begins.
    pub shutdown_grace: Duration,
    pub hub: HubConfig,
    /// What signaling tells browsers about STUN/TURN.
    pub ice: IceServers,
    /// The embedded TURN server, already bound (see [`start_turn`]); `run` waits for it
    /// to stop at shutdown.
    pub turn: Option<Turn>,
    /// Where to serve `/metrics`, already bound.
    pub metrics: Option<TcpListener>,
    /// How often every WebSocket is pinged (proxies cut idle ones).
    pub keepalive: Duration,
    /// The `echo` user, and where its calls bind their sockets; `None` turns it off.
    pub echo: Option<EchoConfig>,
    /// Connections and requests on the web port.
    pub http: HttpLimits,
    /// WebSockets and TURN credentials per client address.
    pub signaling: SignalingLimits,
    /// Who may come in.
    pub access: Arc<Access>,
    /// Reload the access files on SIGHUP (the process's own server; tests run several).
    pub reload_on_sighup: bool,
    /// With `reload_on_sighup`: how to read the configuration again.
    pub reconfigure: Option<reload::Reconfigure>,
    /// Obtains and renews the certificate `tls` answers with.
    pub acme: Option<Acme>,
    /// Plain HTTP that sends people to HTTPS, already bound.
    pub redirect: Option<(TcpListener, Redirect)>,
    /// With `--redis`: the cluster this node joined (see [`Cluster::join`]).
    pub cluster: Option<(Arc<Cluster>, tokio::sync::mpsc::Receiver<crate::cluster::wire::Message>)>,
    /// How account holders' devices are rung by push, and which addresses pushes may go
    /// to (needs the access's store).
    pub push: Option<(crate::push::PushConfig, duet_turn::policy::PeerPolicy)>,
}

impl RunOptions {
    /// Plain HTTP, no TURN: what most tests need.
    pub fn plain() -> Self {
        Self {
            tls: None,
            shutdown_grace: Duration::from_secs(2),
            hub: HubConfig::default(),
            ice: IceServers::none(),
            turn: None,
            metrics: None,
            keepalive: Duration::from_secs(25),
            echo: None,
            http: HttpLimits::default(),
            signaling: SignalingLimits::default(),
            access: Arc::new(Access::open()),
            reload_on_sighup: false,
            reconfigure: None,
            acme: None,
            redirect: None,
            cluster: None,
            push: None,
        }
    }
}

/// Serves the web client and signaling on `listener` until `shutdown` is cancelled,
/// then tells every client and waits (at most `shutdown_grace`) for them to close.
pub async fn run(
    listener: TcpListener,
    options: RunOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let turn = options.turn;
    let pusher = match (options.push, options.access.store()) {
        (Some((config, policy)), Some(store)) => {
            let tasks = tokio_util::task::TaskTracker::new();
            Some(crate::push::Pusher::start(store.clone(), config, Arc::new(policy), tasks).await?)
        }
        _ => None,
    };
    let setup = crate::signaling::Setup {
        ice: options.ice,
        keepalive: options.keepalive,
        echo: options.echo,
        limits: options.signaling,
        turn: turn.as_ref().map(Turn::users),
        access: Arc::clone(&options.access),
        cluster: options.cluster,
        pusher: pusher.clone(),
    };
    let signaling = Signaling::start(options.hub, setup, shutdown.clone());
    let access = Arc::clone(&options.access);
    if let Some(listener) = options.metrics {
        let monitor = turn.as_ref().map(Turn::monitor);
        let metrics = Arc::new(crate::serve::metrics::Metrics::new(Some(Arc::clone(&signaling)), monitor));
        tokio::spawn(crate::serve::metrics::serve(listener, metrics, shutdown.clone()));
    }
    let certificates = options.acme.as_ref().map(Acme::certificates);
    if let Some(acme) = options.acme {
        tokio::spawn(acme.run(shutdown.clone()));
    }
    if let Some((listener, redirect)) = options.redirect {
        tokio::spawn(crate::acme::redirect::serve(listener, redirect, shutdown.clone()));
    }
    let app = web::app(web::Web {
        signaling: Arc::clone(&signaling),
        access: options.access,
        tls: options.tls.is_some(),
        shutdown: shutdown.clone(),
        certificates,
        pusher,
    });
    // The web port carries TURN too: TLS clients that ask for it by ALPN get it.
    let turn_streams = turn.as_ref().map(|turn| Arc::new(turn.streams()) as Arc<dyn crate::net::TurnHandoff>);
    let tls = match (options.tls, &turn_streams) {
        (Some(tls), Some(_)) => {
            let mut config = (*tls).clone();
            // rustls picks the first of ours the client offers: a TURN client that offers
            // both (coturn's does) means TURN; browsers never offer stun.turn.
            config.alpn_protocols.insert(0, crate::net::demux::ALPN_TURN.to_vec());
            Some(Arc::new(config))
        }
        (tls, _) => tls,
    };
    let slots = crate::limits::Slots::for_web(&options.http);
    if options.reload_on_sighup {
        let reload = reload::Reload {
            signaling: Arc::clone(&signaling),
            access: Arc::clone(&access),
            slots: slots.clone(),
            reconfigure: options.reconfigure,
        };
        tokio::spawn(reload.on_sighup(shutdown.clone()));
    }
    let port = crate::net::http::WebPort {
        tls,
        limits: options.http,
        slots,
        grace: options.shutdown_grace,
        turn: turn_streams,
    };
    crate::net::http::serve(listener, app, port, shutdown.clone()).await;
    // The HTTP server has stopped accepting; WebSocket tasks are saying goodbye.
    if tokio::time::timeout(options.shutdown_grace, signaling.closed()).await.is_err() {
        tracing::warn!("some connections did not close within {:?}", options.shutdown_grace);
    }
    if let Some(turn) = turn {
        turn.closed().await;
    }
    Ok(())
}

/// Starts the STUN/TURN side as configured: the embedded server (bound here, so a port
/// in use stops duet before it announces itself), an external one, or none; returns the
/// running server and what signaling should hand to browsers.
pub async fn start_ice(
    mode: &TurnMode,
    settings: &IceSettings,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) -> anyhow::Result<(Option<Turn>, IceServers)> {
    match mode {
        TurnMode::Embedded(embedded) => {
            let https = tls.is_some();
            let run = crate::turn::issued::Run::new();
            let turn = match start_turn(embedded, settings.ttl, tls, Some(run.issuer()), shutdown).await {
                Ok(turn) => turn,
                Err(e) if !embedded.listen_chosen => {
                    tracing::warn!(
                        "{e:#}. duet runs without its TURN server: calls work where direct \
                         connections do; choose another address with --turn-listen"
                    );
                    return Ok((None, IceServers::none()));
                }
                Err(e) => return Err(e),
            };
            let tls_port = turn.tls.map(|a| a.port());
            let mut ice = IceServers::embedded(
                settings,
                turn.udp.port(),
                turn.tcp.is_some(),
                tls_port,
                embedded.secret.clone(),
                run,
            );
            if https {
                // HTTPS on: the web port carries TURN over TLS too (see `demux`).
                ice = ice.with_web_port(true);
            }
            Ok((Some(turn), ice))
        }
        other => Ok((None, IceServers::from_mode(settings, other))),
    }
}

/// Binds and starts the embedded TURN server. `issuer`: this process's signaling, whose
/// users of earlier runs are refused (none for a TURN-only node, which other processes
/// hand out credentials for).
pub async fn start_turn(
    settings: &EmbeddedTurn,
    credential_ttl: Duration,
    tls: Option<Arc<rustls::ServerConfig>>,
    issuer: Option<duet_turn::auth::Issuer>,
    shutdown: CancellationToken,
) -> anyhow::Result<Turn> {
    let interfaces = crate::interfaces::current();
    let policy = crate::config::policy_for_listener(
        &settings.peer_policy,
        settings.listen.ip(),
        settings.external_ip,
        &interfaces,
    );
    let core = duet_turn::Config {
        realm: settings.realm.clone(),
        software: None,
        credentials: duet_turn::auth::Credentials {
            shared_secret: Some(settings.secret.clone()),
            static_users: settings.static_users.clone(),
            issuer,
        },
        nonce_secret: crate::random::bytes::<32>().context("read random bytes from /dev/urandom")?,
        policy,
        lifetimes: Default::default(),
        quotas: duet_turn::Quotas {
            allocations_per_address: settings.allocations_per_address,
            allocations_total: settings.allocations_total,
            ..Default::default()
        },
    };
    let relay_ips = crate::turn::relay_ips(settings.listen.ip(), settings.external_ip, &interfaces)?;
    for relay in &relay_ips {
        if relay.bind.is_unspecified() && settings.external_ip.is_none() {
            tracing::warn!(
                "TURN announces relay addresses as {}; behind NAT, set --turn-external-ip to the public address",
                relay.announce
            );
        }
    }
    let driver = DriverConfig {
        listen: settings.listen,
        tls: tls.map(|https| {
            // The HTTPS configuration offers ALPN "http/1.1" only, and rustls refuses a
            // client whose ALPN list does not overlap; TURN clients offer "stun.turn".
            let mut config = (*https).clone();
            config.alpn_protocols = vec![b"stun.turn".to_vec()];
            (SocketAddr::new(settings.listen.ip(), settings.tls_port), Arc::new(config))
        }),
        stream_listeners: settings.stream_listeners,
        relay_ips,
        relay_ports: settings.relay_ports.clone(),
        credential_ttl,
        streams_per_address: settings.streams_per_address,
        streams_total: settings.streams_total,
        threads: settings.threads,
    };
    let core_own = core.policy.own_addresses.clone();
    let turn = Turn::start(core, driver, shutdown.clone()).await?;
    let (base, listen, external) = (settings.peer_policy.clone(), settings.listen.ip(), settings.external_ip);
    let own = move || {
        let interfaces = crate::interfaces::current();
        crate::config::policy_for_listener(&base, listen, external, &interfaces).own_addresses
    };
    turn.watch_own_addresses(own, core_own.clone(), shutdown);
    tracing::info!(
        "TURN on udp+tcp {}{} ({} UDP thread{}); relay ports {}-{}; at most {} allocations, {} per client \
         address; never relaying to this server's own {}",
        turn.udp,
        turn.tls.map(|a| format!(", tls {a}")).unwrap_or_default(),
        settings.threads,
        if settings.threads == 1 { "" } else { "s" },
        settings.relay_ports.0.start(),
        settings.relay_ports.0.end(),
        settings.allocations_total,
        settings.allocations_per_address,
        core_own.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
    );
    Ok(turn)
}

/// Raises the open-file limit as far as the system allows and returns it (1024, with a
/// warning, if it cannot be read), for sizing every total from it.
pub fn raise_open_files() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!("cannot read or raise the open-file limit ({e}); sizing for 1024");
            1024
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
