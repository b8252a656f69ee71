//! `duet`: parse the command line, bind, serve until Ctrl-C or SIGTERM.

use anyhow::Context;
use clap::{CommandFactory, Parser};
use duet::access::Access;
use duet::cli::{Cli, Command};
use duet::config::{LogFormat, ServeConfig};
use duet::net::tls;
use duet::serve;
use duet::{RunOptions, run};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Errors reach the operator as one line: what failed, and why.
fn main() {
    if let Err(e) = duet() {
        eprintln!("duet: {e:#}");
        std::process::exit(1);
    }
}

fn duet() -> anyhow::Result<()> {
    // One TLS implementation for the whole process (the ACME client asks for the default).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let command = Cli::command();
    let started_with: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let argv = match duet::config::file::merged(&command, started_with.clone()) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("duet: {e:#}");
            std::process::exit(2);
        }
    };
    let cli = Cli::parse_from(&argv);
    let set_log_level = logging(&cli);
    let config = match cli.command {
        Some(Command::Serve(args)) => (*args).into_config()?,
        Some(Command::Call(args)) => return call(args),
        Some(Command::Config(args)) => {
            let matches = command.clone().get_matches_from(&argv);
            let options = command.find_subcommand("config").expect("declared");
            let sub = matches.subcommand_matches("config").expect("the config subcommand");
            print!("{}", duet::config::file::effective(options, sub));
            if let Err(e) = (*args).into_config() {
                eprintln!("duet config: note: this configuration would not start: {e:#}");
            }
            return Ok(());
        }
        Some(Command::User(args)) => return say_errors("duet user", duet::admin::user(args)),
        Some(Command::Invite(args)) => return say_errors("duet invite", duet::admin::invite(args)),
        Some(Command::Turn(args)) => {
            let config = (*args).into_config()?;
            let runtime = tokio::runtime::Runtime::new().context("start the async runtime")?;
            return runtime.block_on(duet::turn_node::run(config));
        }
        None => cli.serve.into_config()?,
    };
    // SIGHUP reads the same command line (and the file it names) again.
    let reconfigure = duet::cli::serve_config_from(&started_with).ok().map(|(_, effective)| {
        duet::serve::reload::Reconfigure {
            argv: started_with,
            effective: std::sync::Mutex::new(effective),
            set_log_level,
        }
    });
    tokio::runtime::Runtime::new().context("start the async runtime")?.block_on(serve(config, reconfigure))
}

/// Logs on stderr (stdout says where duet listens, for scripts), as text or JSON lines,
/// filtered by the level asked for; returns what changes the level later.
fn logging(cli: &Cli) -> duet::serve::reload::SetLogLevel {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_new(cli.log_level()).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    match cli.log_format() {
        LogFormat::Text => {
            registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)).init()
        }
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer().json().with_current_span(false).with_writer(std::io::stderr),
            )
            .init(),
    }
    Box::new(move |level: &str| {
        let filter = EnvFilter::try_new(level)?;
        handle.reload(filter)?;
        Ok(())
    })
}

/// An operator's command failed: one line that says why, exit code 1.
fn say_errors(command: &str, result: anyhow::Result<()>) -> anyhow::Result<()> {
    if let Err(e) = result {
        eprintln!("{command}: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

/// `duet call`: messages for the person at the terminal, and an exit code per outcome.
fn call(args: duet::call::CallArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("start the async runtime")?;
    match runtime.block_on(duet::call::run(args)) {
        Ok(()) => Ok(()),
        Err(e) => {
            eprintln!("duet call: {e}");
            std::process::exit(i32::from(e.exit_code()));
        }
    }
}

/// Raises the open-file limit as far as the system allows and sizes every total from it,
/// so that a full relay or a flood of connections never leaves the web page without a
/// file descriptor (coturn logs its ceiling the same way).
fn size_for_open_files(config: &mut ServeConfig) {
    let open_files = serve::raise_open_files();
    config.size_for_open_files(open_files);
    let limits = &config.limits;
    tracing::info!(
        "open files: at most {open_files}; so at most {} WebSockets, {} web connections, {} TURN \
         allocations and {} TURN TCP/TLS connections",
        limits.signaling.sockets_total,
        limits.http.total,
        limits.turn_allocations_total,
        limits.turn_streams_total,
    );
}

/// The key that signs resume tokens, kept in the state directory; without one (no home
/// directory, a read-only disk) duet runs, but a restart ends everyone's sessions.
fn resume_key(config: &ServeConfig) -> Option<[u8; 32]> {
    let Some(dir) = &config.state_dir else {
        tracing::warn!("no state directory (set --state-dir): after a restart nobody can resume their call");
        return None;
    };
    match duet::state::resume_key(dir) {
        Ok(key) => Some(key),
        Err(e) => {
            tracing::warn!("{e:#}: after a restart nobody can resume their call");
            None
        }
    }
}

/// Joins the cluster on `url`, checking that this node signs with the other nodes' keys.
async fn join_cluster(
    url: &str,
    config: &ServeConfig,
) -> anyhow::Result<(
    std::sync::Arc<duet::cluster::Cluster>,
    tokio::sync::mpsc::Receiver<duet::cluster::wire::Message>,
)> {
    let dir = config.state_dir.as_deref().context("--redis needs a state directory (--state-dir)")?;
    let resume = duet::state::resume_key(dir)?;
    let session = duet::state::key(dir, duet::store::KEY)?;
    let keys = duet::cluster::fingerprint(&[&resume, &session]);
    let key = duet::cluster::envelope::ClusterKey::derive(&session);
    duet::cluster::Cluster::join(url, &keys, key, CancellationToken::new()).await
}

/// Who may come in, with the accounts and invites of the state directory. An open
/// server without a usable state directory still runs (accounts cannot sign in then).
fn access(config: &ServeConfig) -> anyhow::Result<Access> {
    let mode = config.access.mode;
    let access = match Access::new(config.access.clone(), config.state_dir.as_deref()) {
        Ok(access) => access,
        Err(e) if mode == duet_access::Mode::Open => {
            tracing::warn!("{e:#}: accounts and invite links are off");
            Access::new(config.access.clone(), None)?
        }
        Err(e) => return Err(e),
    };
    let what = match mode {
        duet_access::Mode::Open => "open: anyone who reaches duet picks a name",
        duet_access::Mode::Password => "password: one password for everyone, then a name of their choice",
        duet_access::Mode::Members => "members: accounts and invite links only",
    };
    tracing::info!("access {what}");
    Ok(access)
}

fn local_port(listener: &tokio::net::TcpListener) -> u16 {
    listener.local_addr().map_or(0, |a| a.port())
}

async fn serve(
    mut config: ServeConfig,
    reconfigure: Option<duet::serve::reload::Reconfigure>,
) -> anyhow::Result<()> {
    size_for_open_files(&mut config);
    config.hub.resume_key = resume_key(&config);
    let access = std::sync::Arc::new(access(&config)?);
    let acme = match &config.tls {
        duet::config::TlsSource::Acme(acme) => Some(duet::acme::Acme::new(acme.clone())?),
        _ => None,
    };
    let tls = match &acme {
        Some(acme) => Some(acme.certificates().server_config()?),
        None => tls::server_config(&config.tls)?,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("bind HTTP {}", config.listen))?;
    let redirect = bind_redirect(&config, acme.as_ref()).await?;
    let local = listener.local_addr().context("read the bound address")?;
    let shutdown = CancellationToken::new();
    let (turn, ice) = serve::start_ice(&config.turn, &config.ice, tls.clone(), shutdown.clone()).await?;
    let metrics = match config.metrics {
        Some(at) => duet::serve::metrics::bind(at).await?,
        None => None,
    };
    let cluster = match &config.redis {
        Some(url) => Some(join_cluster(url, &config).await?),
        None => None,
    };
    announce(&config, local, tls.is_some());
    stop_on_signal(shutdown.clone());
    let options = RunOptions {
        cluster,
        tls,
        shutdown_grace: config.shutdown_grace,
        hub: config.hub.clone(),
        ice,
        turn,
        metrics,
        keepalive: config.keepalive,
        echo: config
            .echo
            .then(|| duet::signaling::echo::EchoConfig::for_listen(config.listen.ip(), &config.peer_policy)),
        http: config.limits.http.clone(),
        signaling: config.limits.signaling.clone(),
        access,
        reload_on_sighup: true,
        reconfigure,
        acme,
        redirect,
        push: Some((config.push.clone(), push_policy(&config))),
    };
    run(listener, options, shutdown).await
}

/// Where pushes may go: where TURN peers may (no loopback, private or link-local
/// addresses unless allowed), and never to this machine's own addresses.
fn push_policy(config: &ServeConfig) -> duet_turn::policy::PeerPolicy {
    let mut policy = config.peer_policy.clone();
    policy.own_addresses.extend(duet::interfaces::current().iter().copied());
    policy
}

/// Binds `--http-redirect-listen`, if asked: plain HTTP that sends people to HTTPS (and
/// answers HTTP-01 challenges).
async fn bind_redirect(
    config: &ServeConfig,
    acme: Option<&duet::acme::Acme>,
) -> anyhow::Result<Option<(tokio::net::TcpListener, duet::acme::redirect::Redirect)>> {
    let Some(addr) = config.http_redirect else { return Ok(None) };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind --http-redirect-listen {addr}"))?;
    let default_host = match &config.tls {
        duet::config::TlsSource::Acme(acme) => acme.domains.first().cloned(),
        _ => None,
    };
    let certificates = acme.map(duet::acme::Acme::certificates);
    tracing::info!("plain HTTP on port {} redirects to HTTPS", local_port(&listener));
    let redirect =
        duet::acme::redirect::Redirect { https_port: config.listen.port(), default_host, certificates };
    Ok(Some((listener, redirect)))
}

/// Says where duet is: on stdout (logs go to stderr) so scripts and tests can read it.
fn announce(config: &ServeConfig, local: std::net::SocketAddr, https: bool) {
    let scheme = if https { "https" } else { "http" };
    let shown = match &config.tls {
        duet::config::TlsSource::Acme(acme) if local.port() == 443 => format!("https://{}", acme.domains[0]),
        duet::config::TlsSource::Acme(acme) => format!("https://{}:{}", acme.domains[0], local.port()),
        _ if local.ip().is_unspecified() => format!("{scheme}://localhost:{}", local.port()),
        _ => format!("{scheme}://{local}"),
    };
    println!("duet is listening on {shown}");
    tracing::info!("open {shown} in two tabs, sign in with two names, click one to call");
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM.
fn stop_on_signal(shutdown: CancellationToken) {
    tokio::spawn(async move {
        serve::shutdown_signal().await;
        tracing::info!("shutting down");
        shutdown.cancel();
    });
}
