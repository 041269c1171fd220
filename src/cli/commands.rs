//! What each command does. Errors are printed as one clear line and exit with code 1
//! (2 for usage problems, which clap reports itself).

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::output::{self, Table};
use super::*;
use crate::app::App;
use crate::config::{Config, LogFormat, normalize_wwwroot, wwwroot_problem};
use crate::crypto;
use crate::stats::Window;
use crate::store::source::{CourseField, Source};
use crate::store::state::{self, Peer};
use crate::xmlrpc::Value;

type CmdResult = Result<(), String>;

pub fn run(cli: Cli) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => 0,
        Err(message) => {
            // Errors can quote what a peer sent.
            eprintln!("error: {}", crate::peer_text::escape_for_terminal(&message));
            1
        }
    }
}

fn init_logging(config: Option<&Config>, serving: bool) {
    let level = config
        .map(|c| c.log.level.clone())
        .unwrap_or_else(|| "warn".into());
    // Commands print their own results; only the daemon logs at the configured level.
    let level = if serving { level } else { "warn".into() };
    let filter = tracing_subscriber::EnvFilter::try_from_env("USESTATS_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in log files or journald.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let json = config.is_some_and(|c| c.log.format == LogFormat::Json);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn load_config(path: &Path) -> Result<Config, String> {
    if !path.exists() {
        return Err(format!(
            "no configuration file at {} (create one with `usestats init --wwwroot URL`, or pass --config FILE)",
            path.display()
        ));
    }
    Config::load(path).map_err(|e| e.to_string())
}

fn open(path: &Path) -> Result<Arc<App>, String> {
    let config = load_config(path)?;
    init_logging(Some(&config), false);
    App::open(config).map_err(|e| e.to_string())
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: {e}"),
    }
}

async fn dispatch(cli: Cli) -> CmdResult {
    let json_out = cli.json;
    match cli.command {
        Command::Init(args) => init(&cli.config, args, json_out),
        Command::Demo(args) => demo(&cli.config, args, json_out).await,
        Command::Serve { listen } => serve(&cli.config, listen).await,
        Command::Keys { action } => keys(&open(&cli.config)?, action, json_out).await,
        Command::Peer { action } => peer(&open(&cli.config)?, action, json_out).await,
        Command::Call {
            peer,
            method,
            params,
        } => call(&open(&cli.config)?, &peer, &method, params.as_deref()).await,
        Command::Grant { action } => grant(&open(&cli.config)?, action, json_out).await,
        Command::Stats(args) => stats(&open(&cli.config)?, args, json_out).await,
        Command::Collect(args) => collect(&open(&cli.config)?, args, json_out).await,
        Command::Token { action } => token(&open(&cli.config)?, action, json_out).await,
        Command::Audit { peer, since, limit } => {
            audit(&open(&cli.config)?, peer, since, limit, json_out).await
        }
        Command::Doctor => doctor(&cli.config, json_out).await,
        Command::Bench(args) => crate::bench::run_cli(&open(&cli.config)?, args, json_out).await,
    }
}

fn write_config(path: &Path, config: &Config) -> CmdResult {
    let header = "# usestats configuration. Every setting not written here takes its documented\n# default: see examples/usestats.toml for the full list with comments.\n\n";
    // Owner-only whatever the umask: a config may hold database passwords.
    crate::files::write_private(path, format!("{header}{}", config.to_toml()).as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn init(path: &Path, args: InitArgs, json_out: bool) -> CmdResult {
    init_logging(None, false);
    if path.exists() && !args.force {
        return Err(format!(
            "{} already exists (use --force to overwrite it)",
            path.display()
        ));
    }
    let wwwroot = args.wwwroot.trim_end_matches('/').to_string();
    if let Some(problem) = wwwroot_problem(&wwwroot) {
        return Err(format!("--wwwroot {wwwroot}: {problem}"));
    }
    let mut config = Config::for_wwwroot(&wwwroot);
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(name) = args.name {
        // Peers show it as our page title and it goes into our certificate: one line of
        // text, of a length Moodle's own site names keep to.
        if name.chars().any(char::is_control) || name.chars().count() > 255 {
            return Err(
                "--name: one line of at most 255 characters, without control characters".into(),
            );
        }
        config.site.name = name;
    }
    config.path = path.to_path_buf();
    config.base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| ".".into());
    config.validate().map_err(|e| e.to_string())?;
    write_config(path, &config)?;
    let app = App::open(config).map_err(|e| e.to_string())?;
    let replaced = replace_foreign_key(&app)?;
    let info = app.keyring().current.info();
    if json_out {
        print_json(
            &json!({"config": path, "wwwroot": wwwroot, "certificate": info, "replaced_certificate_of": replaced}),
        );
    } else {
        println!("wrote {}", path.display());
        if let Some(old) = &replaced {
            println!(
                "keys         the key pair in place named {old}: a new one was generated for {wwwroot} (the old one is archived)"
            );
        }
        println!("wwwroot      {wwwroot}");
        println!("keys         {}", app.keystore.dir().display());
        println!("fingerprint  {}", info.fingerprint_sha1);
        println!("expires      {}", output::time(info.not_after));
        println!("\nnext: `usestats demo` for demo data, `usestats serve` to run the peer.");
    }
    Ok(())
}

/// `init --force` over an existing key directory: a certificate that names another wwwroot
/// is useless to us (peers check it against the wwwroot they know us by, as Moodle's
/// `check_credentials` does), so it is rotated away. `init` is the command that sets the
/// wwwroot; refusing here would leave the operator a config and keys that disagree, with
/// `keys rotate` as the only way out. Rotation archives the old key, so nothing is lost.
/// Returns the wwwroot the replaced certificate named.
fn replace_foreign_key(app: &App) -> Result<Option<String>, String> {
    let current = app.keyring().current.clone();
    if app.keys_generated_now || crypto::check_credentials(&current.cert, app.wwwroot()).is_ok() {
        return Ok(None);
    }
    let info = current.info();
    let named = info
        .subject_alt_name
        .or(info.common_name)
        .unwrap_or_else(|| "another host".into());
    app.rotate_keys().map_err(|e| e.to_string())?;
    Ok(Some(named))
}

async fn demo(path: &Path, args: DemoArgs, json_out: bool) -> CmdResult {
    if !path.exists() {
        let config = Config::for_wwwroot("http://127.0.0.1:8080");
        write_config(path, &config)?;
        if !json_out {
            println!("wrote {} (wwwroot http://127.0.0.1:8080)", path.display());
        }
    }
    let config = load_config(path)?;
    if config.source_is_separate() {
        return Err(format!(
            "[source] url points at a separate database ({}): `demo` writes the source tables, and usestats never writes into a Moodle database. Remove [source] url to build the demo in the embedded database.",
            crate::config::redacted_url(&config.source.url)
        ));
    }
    let app = open(path)?;
    let defaults = crate::demo::DemoOptions::default();
    let options = crate::demo::DemoOptions {
        seed: args.seed,
        users: args.users.unwrap_or(defaults.users),
        courses: args.courses.unwrap_or(defaults.courses),
        log_rows: args.log_rows.unwrap_or(defaults.log_rows),
        local_wwwroot: app.wwwroot().to_string(),
        remote_hosts: if args.remote_hosts.is_empty() {
            defaults.remote_hosts.clone()
        } else {
            args.remote_hosts.clone()
        },
        anchor: defaults.anchor,
        progress: !json_out && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let prefix = app.config.source.prefix.clone();
    let summary = app
        .source
        .run(move |conn| {
            crate::demo::build_demo(conn, &prefix, &options)
                .map_err(|e| crate::store::StoreError::Invalid(e.to_string()))
        })
        .await
        .map_err(|e| e.to_string())?;
    if json_out {
        print_json(&json!({
            "users": summary.users, "courses": summary.courses, "log_rows": summary.log_rows,
            "sample_usernames": summary.sample_usernames, "seconds": summary.seconds,
        }));
        return Ok(());
    }
    println!(
        "demo site built: {} users, {} courses, {} log rows in {:.1} s (database {})",
        summary.users,
        summary.courses,
        summary.log_rows,
        summary.seconds,
        crate::config::redacted_url(&app.config.source_url())
    );
    println!("usernames to try: {}", summary.sample_usernames.join(", "));
    if let (false, Some(first)) = (args.quiet, summary.sample_usernames.first()) {
        println!("\n$ usestats stats {first}\n");
        stats(
            &app,
            StatsArgs {
                username: first.clone(),
                from: None,
                to: None,
                course: None,
                format: StatsFormat::Table,
            },
            false,
        )
        .await?;
        println!("\nnext: `usestats serve`, then register this peer in Moodle (see README).");
    }
    Ok(())
}

async fn serve(path: &Path, listen: Option<String>) -> CmdResult {
    let mut config = load_config(path)?;
    if let Some(listen) = listen {
        config.server.listen = listen;
        config.validate().map_err(|e| e.to_string())?;
    }
    init_logging(Some(&config), true);
    let address = config.server.listen.clone();
    let app = App::open(config).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let status = &app.crypto;
    tracing::info!(
        wwwroot = %app.wwwroot(),
        listen = %address,
        openssl = %status.openssl_version,
        rc4 = ?status.rc4,
        "usestats serving"
    );
    crate::http::serve_forever(app, listener)
        .await
        .map_err(|e| e.to_string())
}

async fn keys(app: &Arc<App>, action: KeysAction, json_out: bool) -> CmdResult {
    match action {
        KeysAction::Generate { force } => {
            // Opening the app generates the first key pair when there is none.
            if !app.keys_generated_now {
                if !force {
                    return Err("a key pair exists already (use --force to replace it; the old one is archived)".into());
                }
                app.rotate_keys().map_err(|e| e.to_string())?;
            }
            show_keys(app, false, json_out).await
        }
        KeysAction::Show { pem } => show_keys(app, pem, json_out).await,
        KeysAction::Rotate => {
            app.rotate_keys().map_err(|e| e.to_string())?;
            if !json_out {
                println!("rotated: peers that still hold the old certificate get 7025 and follow.");
            }
            show_keys(app, false, json_out).await
        }
    }
}

async fn show_keys(app: &Arc<App>, pem: bool, json_out: bool) -> CmdResult {
    let ring = app.keyring();
    let current = ring.current.info();
    let archived: Vec<_> = ring.archived.iter().map(|id| id.info()).collect();
    if json_out {
        print_json(
            &json!({"current": current, "archived": archived, "pem": ring.current.cert_pem}),
        );
        return Ok(());
    }
    println!("subject      {}", current.subject);
    println!("fingerprint  {}", current.fingerprint_sha1);
    println!(
        "valid        {} → {}",
        output::time(current.not_before),
        output::time(current.not_after)
    );
    println!(
        "key          RSA {} bits, {}",
        current.key_bits,
        app.keystore.dir().display()
    );
    let mut table = Table::new(&["archived fingerprint", "valid from", "valid to"]);
    for info in &archived {
        table.row(vec![
            info.fingerprint_sha1.clone(),
            output::time(info.not_before),
            output::time(info.not_after),
        ]);
    }
    if !table.is_empty() {
        println!("\n{}", table.render());
    }
    if pem {
        print!("\n{}", ring.current.cert_pem);
    }
    Ok(())
}

async fn find_peer(app: &Arc<App>, text: &str) -> Result<Peer, String> {
    let wanted = normalize_wwwroot(text);
    let lookup = wanted.clone();
    app.state
        .run(move |c| state::peer_by_wwwroot(c, &lookup))
        .await
        .map_err(|e| e.to_string())?
        .filter(|p| !p.is_all_hosts())
        .ok_or_else(|| format!("no peer {wanted} (see `usestats peer list`)"))
}

fn confirm(question: &str) -> bool {
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

async fn peer(app: &Arc<App>, action: PeerAction, json_out: bool) -> CmdResult {
    match action {
        PeerAction::Add {
            url,
            application,
            yes,
            name,
            ssl_verification,
            allow_expired,
        } => {
            let wwwroot = url.trim_end_matches('/').to_string();
            if let Some(problem) = wwwroot_problem(&wwwroot) {
                return Err(format!("{wwwroot}: {problem}"));
            }
            if normalize_wwwroot(&wwwroot) == normalize_wwwroot(app.wwwroot()) {
                return Err("that is our own wwwroot".into());
            }
            let pem = app
                .client
                .keyswap(app, &wwwroot, application.name(), ssl_verification, None)
                .await
                .map_err(|e| format!("keyswap with {wwwroot} failed: {e}"))?;
            let cert = crypto::parse_cert_pem(&pem).map_err(|e| e.to_string())?;
            let info = crypto::check_credentials(&cert, &wwwroot)
                .map_err(|e| format!("{wwwroot}: {e}"))?;
            if info.not_after < app.now() && !allow_expired {
                // Moodle refuses an expired certificate at registration too.
                return Err(format!(
                    "the certificate {wwwroot} sent expired on {}: ask its administrator to renew the site's key (Moodle renews it on cron), or pass --allow-expired to register it anyway",
                    output::time(info.not_after)
                ));
            }
            if !json_out {
                println!("peer         {wwwroot} ({})", application.name());
                println!("subject      {}", info.subject);
                println!("fingerprint  {}", info.fingerprint_sha1);
                println!("expires      {}", output::time(info.not_after));
            }
            if !yes && !confirm("Register this peer with this certificate?") {
                return Err("not registered".into());
            }
            let name = match name.map(|n| crate::peer_text::plain_name(&n)) {
                Some(name) if !name.is_empty() => name,
                _ => app
                    .client
                    .fetch_site_title(app, &wwwroot)
                    .await
                    .unwrap_or_else(|| wwwroot.clone()),
            };
            let now = app.now();
            let (application, w) = (application.name(), wwwroot.clone());
            let peer = app
                .state
                .run(move |c| {
                    state::upsert_peer(
                        c,
                        &state::NewPeer {
                            wwwroot: &w,
                            name: &name,
                            application,
                            public_key: &pem,
                            public_key_expires: info.not_after,
                            ssl_verification,
                        },
                        now,
                    )
                })
                .await
                .map_err(|e| e.to_string())?;
            if json_out {
                print_json(&peer);
            } else {
                println!(
                    "registered {} as \"{}\". Next: `usestats peer publish {} use_stats` and/or `peer subscribe`.",
                    peer.wwwroot,
                    crate::peer_text::escape_for_terminal(&peer.name),
                    peer.wwwroot
                );
                if app.config.source.url.trim().is_empty()
                    && !source_knows_host(app, &peer.wwwroot).await
                {
                    println!(
                        "note: the embedded (demo) database has no users from {0}; its people cannot call use_stats here until they have accounts: `usestats demo --remote-host {0}` adds some (an admin and a few learners).",
                        peer.wwwroot
                    );
                }
            }
            Ok(())
        }
        PeerAction::List { all } => {
            let peers = app
                .state
                .run(move |c| state::all_peers(c, all))
                .await
                .map_err(|e| e.to_string())?;
            let mut services = Vec::new();
            for peer in &peers {
                let id = peer.id;
                services.push(
                    app.state
                        .run(move |c| state::effective_services(c, id))
                        .await
                        .map_err(|e| e.to_string())?,
                );
            }
            if json_out {
                let list: Vec<_> = peers
                    .iter()
                    .zip(&services)
                    .map(|(p, s)| json!({"peer": p, "services": s}))
                    .collect();
                print_json(&list);
                return Ok(());
            }
            let mut table = Table::new(&[
                "wwwroot",
                "name",
                "app",
                "publish",
                "subscribe",
                "last contact",
                "offset",
                "key expires",
                "last error",
            ]);
            for (peer, services) in peers.iter().zip(&services) {
                let names = |f: fn(&state::PeerService) -> bool| {
                    let list: Vec<&str> = services
                        .iter()
                        .filter(|s| f(s))
                        .map(|s| s.service.as_str())
                        .collect();
                    if list.is_empty() {
                        "-".to_string()
                    } else {
                        list.join(",")
                    }
                };
                table.row(vec![
                    format!(
                        "{}{}",
                        peer.wwwroot,
                        if peer.deleted { " (deleted)" } else { "" }
                    ),
                    peer.name.clone(),
                    peer.application.clone(),
                    names(|s| s.publish),
                    names(|s| s.subscribe),
                    output::time(peer.last_connect_time),
                    peer.clock_offset
                        .map(|o| format!("{o:+} s"))
                        .unwrap_or_else(|| "-".into()),
                    output::time(peer.public_key_expires),
                    peer.last_error
                        .clone()
                        .map(|e| e.chars().take(60).collect())
                        .unwrap_or_else(|| "-".into()),
                ]);
            }
            if table.is_empty() {
                println!("no peers yet: `usestats peer add URL`");
            } else {
                print!("{}", table.render());
            }
            Ok(())
        }
        PeerAction::Show { peer } => {
            let peer = find_peer(app, &peer).await?;
            let id = peer.id;
            let (services, history) = app
                .state
                .run(move |c| {
                    Ok((
                        state::own_services(c, id)?,
                        state::peer_certificate_history(c, id)?,
                    ))
                })
                .await
                .map_err(|e| e.to_string())?;
            let info = crypto::parse_cert_pem(&peer.public_key)
                .ok()
                .map(|c| crypto::cert_info(&c));
            if json_out {
                print_json(
                    &json!({"peer": peer, "certificate": info, "services": services, "certificate_history": history}),
                );
                return Ok(());
            }
            println!("wwwroot          {}", peer.wwwroot);
            println!(
                "name             {}",
                crate::peer_text::escape_for_terminal(&peer.name)
            );
            println!("application      {}", peer.application);
            println!("deleted          {}", peer.deleted);
            println!("tls verification {}", peer.ssl_verification);
            if let Some(info) = info {
                println!("subject          {}", info.subject);
                println!("fingerprint      {}", info.fingerprint_sha1);
                println!("key expires      {}", output::time(info.not_after));
            } else {
                println!("certificate      none on file");
            }
            println!("last contact     {}", output::time(peer.last_connect_time));
            println!(
                "clock offset     {}",
                peer.clock_offset
                    .map(|o| format!("{o:+} s"))
                    .unwrap_or_else(|| "-".into())
            );
            println!(
                "last error       {}",
                crate::peer_text::escape_for_terminal(peer.last_error.as_deref().unwrap_or("-"))
            );
            println!(
                "timeouts         connect {} ms, total {} ms",
                peer.connect_timeout_ms
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "default".into()),
                peer.request_timeout_ms
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "default".into())
            );
            for s in services {
                println!(
                    "service          {} publish={} subscribe={}",
                    s.service, s.publish, s.subscribe
                );
            }
            for h in history {
                println!(
                    "old certificate  {} retired {}",
                    h.fingerprint,
                    output::time(h.retired_at)
                );
            }
            Ok(())
        }
        PeerAction::Remove { peer } => {
            let peer = find_peer(app, &peer).await?;
            let id = peer.id;
            app.state
                .run(move |c| state::delete_peer(c, id))
                .await
                .map_err(|e| e.to_string())?;
            println!("deleted {}", peer.wwwroot);
            Ok(())
        }
        PeerAction::Publish(args) => set_service(app, args, true, json_out).await,
        PeerAction::Subscribe(args) => set_service(app, args, false, json_out).await,
        PeerAction::Set {
            peer,
            connect_timeout_ms,
            timeout_ms,
            ssl_verification,
        } => {
            let peer = find_peer(app, &peer).await?;
            let id = peer.id;
            let connect = connect_timeout_ms.or(peer.connect_timeout_ms);
            let total = timeout_ms.or(peer.request_timeout_ms);
            if connect.is_some_and(|v| v <= 0) || total.is_some_and(|v| v <= 0) {
                return Err("timeouts must be positive milliseconds".into());
            }
            app.state
                .run(move |c| {
                    state::set_peer_timeouts(c, id, connect, total)?;
                    if let Some(level) = ssl_verification {
                        state::set_peer_ssl_verification(c, id, level)?;
                    }
                    Ok(())
                })
                .await
                .map_err(|e| e.to_string())?;
            println!("updated {}", peer.wwwroot);
            Ok(())
        }
        PeerAction::Check { peer } => {
            let peers = match peer {
                Some(p) => vec![find_peer(app, &p).await?],
                None => app
                    .state
                    .run(|c| state::all_peers(c, false))
                    .await
                    .map_err(|e| e.to_string())?,
            };
            let results = crate::health::check_peers(app, peers).await;
            if json_out {
                print_json(&results);
                return Ok(());
            }
            let mut table = Table::new(&[
                "wwwroot",
                "keyswap",
                "call",
                "latency",
                "offset",
                "key expires",
                "problem",
            ]);
            for r in &results {
                table.row(vec![
                    r.wwwroot.clone(),
                    if r.keyswap_ok {
                        "ok".into()
                    } else {
                        "FAILED".into()
                    },
                    if r.call_ok {
                        "ok".into()
                    } else {
                        "FAILED".into()
                    },
                    format!("{} ms", r.latency_ms),
                    r.clock_offset
                        .map(|o| format!("{o:+} s"))
                        .unwrap_or_else(|| "-".into()),
                    output::time(r.key_expires),
                    r.problem.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            print!("{}", table.render());
            if results.iter().any(|r| r.problem.is_some()) {
                return Err("some peers have problems".into());
            }
            Ok(())
        }
    }
}

async fn set_service(
    app: &Arc<App>,
    args: ServiceArgs,
    publish: bool,
    json_out: bool,
) -> CmdResult {
    // With --all-hosts the one positional argument is the service.
    let (peer_text, service) = match (args.all_hosts, args.peer, args.service) {
        (true, Some(service), None) => (None, service),
        (true, None, Some(service)) => (None, service),
        (false, Some(peer), Some(service)) => (Some(peer), service),
        _ => {
            return Err(
                "usage: peer publish|subscribe PEER SERVICE, or --all-hosts SERVICE".into(),
            );
        }
    };
    if app.services.service(&service).is_none() && publish {
        return Err(format!(
            "we do not offer a service named {service} (offered: {})",
            app.services
                .list
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let target = match peer_text {
        Some(p) => find_peer(app, &p).await?,
        None => app
            .state
            .run(state::all_hosts)
            .await
            .map_err(|e| e.to_string())?,
    };
    let on = !args.off;
    let (id, svc) = (target.id, service.clone());
    let row = app
        .state
        .run(move |c| {
            if publish {
                state::set_service(c, id, &svc, Some(on), None)
            } else {
                state::set_service(c, id, &svc, None, Some(on))
            }
        })
        .await
        .map_err(|e| e.to_string())?;
    if json_out {
        print_json(&row);
    } else {
        let who = if target.is_all_hosts() {
            "all hosts".to_string()
        } else {
            target.wwwroot.clone()
        };
        println!(
            "{service} for {who}: publish={} subscribe={}",
            row.publish, row.subscribe
        );
    }
    Ok(())
}

async fn call(app: &Arc<App>, peer: &str, method: &str, params: Option<&str>) -> CmdResult {
    let peer = find_peer(app, peer).await?;
    let params: Vec<Value> = match params {
        None => Vec::new(),
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Array(items)) => items.iter().map(Value::from_json).collect(),
            Ok(_) => return Err("parameters must be a JSON array, e.g. '[\"a\", 2]'".into()),
            Err(e) => return Err(format!("parameters are not valid JSON: {e}")),
        },
    };
    let value = app
        .client
        .call(app, &peer, method, params)
        .await
        .map_err(|e| e.to_string())?;
    print_json(&value.to_json());
    Ok(())
}

async fn grant(app: &Arc<App>, action: GrantAction, json_out: bool) -> CmdResult {
    match action {
        GrantAction::Add {
            wwwroot,
            username,
            site,
            course,
            via,
        } => {
            let now = app.now();
            let grant = app
                .state
                .run(move |c| state::put_grant_via(c, &wwwroot, &username, site, course, &via, now))
                .await
                .map_err(|e| e.to_string())?;
            if json_out {
                print_json(&grant);
            } else {
                println!(
                    "{}@{}: site={} course={} via={}",
                    grant.username,
                    grant.home_wwwroot,
                    grant.site,
                    grant.course,
                    via_text(&grant.via)
                );
            }
            Ok(())
        }
        GrantAction::List => {
            let grants = app
                .state
                .run(state::list_grants)
                .await
                .map_err(|e| e.to_string())?;
            if json_out {
                print_json(&grants);
                return Ok(());
            }
            let mut table =
                Table::new(&["home wwwroot", "username", "site", "course", "via", "since"]);
            for g in grants {
                table.row(vec![
                    g.home_wwwroot,
                    g.username,
                    g.site.to_string(),
                    g.course.to_string(),
                    via_text(&g.via),
                    output::time(g.created_at),
                ]);
            }
            if table.is_empty() {
                println!("no grants yet: `usestats grant add WWWROOT USERNAME --site --course`");
            } else {
                print!("{}", table.render());
            }
            Ok(())
        }
        GrantAction::Remove { wwwroot, username } => {
            let (w, u) = (wwwroot.clone(), username.clone());
            let removed = app
                .state
                .run(move |c| state::remove_grant(c, &w, &u))
                .await
                .map_err(|e| e.to_string())?;
            if !removed {
                return Err(format!("no grant for {username}@{wwwroot}"));
            }
            println!("removed the grant of {username}@{wwwroot} and its tokens");
            Ok(())
        }
    }
}

/// The relays of a grant as `grant add`/`grant list` print them.
fn via_text(via: &state::ViaList) -> String {
    if via.is_empty() {
        "home only".into()
    } else {
        via.to_string()
    }
}

async fn stats(app: &Arc<App>, args: StatsArgs, json_out: bool) -> CmdResult {
    let now = app.now();
    let from = args
        .from
        .as_deref()
        .map(output::parse_time)
        .transpose()?
        .unwrap_or(0);
    let to = args
        .to
        .as_deref()
        .map(output::parse_time)
        .transpose()?
        .unwrap_or(now);
    if to < from {
        return Err("--to is before --from".into());
    }
    let source = Source::new(&app.config.source.prefix).map_err(|e| e.to_string())?;
    let settings = crate::reports::settings(&app.config.engine);
    let username = args.username.clone();
    let course_text = args.course.clone();
    let window = Window { from, to, now };
    let (user, report, courses, labels, course_filter) = app
        .source
        .run(move |conn| {
            let invalid = |e: crate::store::source::SourceError| {
                crate::store::StoreError::Invalid(e.to_string())
            };
            let user = source
                .find_user_for_rpc(conn, &username)
                .map_err(invalid)?
                .ok_or_else(|| {
                    crate::store::StoreError::Invalid(format!(
                        "no user {username} in the source database"
                    ))
                })?;
            let course_filter = course_text
                .as_deref()
                .map(|text| course_for_cli(conn, &source, text))
                .transpose()?;
            let report =
                crate::reports::user_report(conn, &source, &settings, user.id, window, true)
                    .map_err(|e| crate::store::StoreError::Invalid(e.to_string()))?;
            let mut ids: Vec<i64> = report.courses.iter().map(|c| c.course).collect();
            // The course asked for may have no time: its zero row still wants its names.
            ids.extend(course_filter.as_ref().map(|c| c.id));
            let courses = source.courses_by_ids(conn, &ids).map_err(invalid)?;
            let cmids: Vec<i64> = report
                .courses
                .iter()
                .flat_map(|c| c.modules.iter().map(|m| m.cmid))
                .collect();
            let labels = source.module_labels(conn, &cmids).map_err(invalid)?;
            Ok((user, report, courses, labels, course_filter))
        })
        .await
        .map_err(|e| e.to_string())?;
    // With --course, the same scoping as the web services (D6): that course's row only, a
    // zero row when it has no time, and only the sessions that touched it.
    let zero_row;
    let (shown, sessions): (Vec<&crate::stats::CourseTotals>, _) = match &course_filter {
        None => (report.courses.iter().collect(), report.sessions.clone()),
        Some(filter) => match report.course(filter.id) {
            Some(row) => (vec![row], row.sessions.clone()),
            None => {
                zero_row = crate::stats::CourseTotals::empty(filter.id);
                (vec![&zero_row], Default::default())
            }
        },
    };
    match (args.format, json_out) {
        (StatsFormat::Json, _) | (_, true) => {
            let courses_json: Vec<_> = shown
                .iter()
                .map(|c| {
                    let course = courses.get(&c.course);
                    json!({
                        "id": c.course,
                        "shortname": course.map(|c| c.shortname.clone()),
                        "fullname": course.map(|c| c.fullname.clone()),
                        "coursetime": c.coursetime, "activitytime": c.activitytime,
                        "othertime": c.othertime, "coursetotal": c.coursetotal,
                        "events": c.events,
                        "modules": c.modules.iter().map(|m| json!({
                            "cmid": m.cmid,
                            "type": m.module,
                            "name": labels.get(&m.cmid).map(|l| l.name.clone()),
                            "elapsed": m.elapsed,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            print_json(&json!({
                "user": {"id": user.id, "username": user.username, "firstname": user.firstname, "lastname": user.lastname},
                "window": {"from": from, "to": to},
                "estimator": report.estimator.to_string(),
                "total": report.total,
                "rows": report.rows_extracted,
                "sessions": {
                    "count": sessions.count, "first": sessions.first_start,
                    "last": sessions.last_start, "min": sessions.min,
                    "max": sessions.max, "mean": sessions.mean(),
                },
                "courses": courses_json,
            }));
        }
        (StatsFormat::Xml, false) => {
            let message = if report.rows_extracted == 0 {
                "<USE_STATS><EMPTYSET /></USE_STATS>".to_string()
            } else {
                crate::rpc::stats_message(
                    &user,
                    &report,
                    crate::rpc::MODULE_SCOPE,
                    &from.to_string(),
                    &courses,
                    &labels,
                )
            };
            println!("{message}");
        }
        (StatsFormat::Table, false) => {
            println!(
                "user       {} ({} {}), id {}",
                user.username, user.firstname, user.lastname, user.id
            );
            println!(
                "window     {} → {}",
                if from == 0 {
                    "the beginning of the log".to_string()
                } else {
                    output::time(from)
                },
                output::time(to)
            );
            println!("estimator  {}", report.estimator);
            println!("log rows   {}", report.rows_extracted);
            println!(
                "total      {} ({} s){}",
                output::duration(report.total),
                report.total,
                if course_filter.is_some() {
                    ", all courses"
                } else {
                    ""
                }
            );
            println!(
                "sessions   {} (first {}, last {}, shortest {}, longest {}, mean {})",
                sessions.count,
                output::time(sessions.first_start.unwrap_or(0)),
                output::time(sessions.last_start.unwrap_or(0)),
                output::duration(sessions.min),
                output::duration(sessions.max),
                output::duration(sessions.mean()),
            );
            let mut table = Table::new(&[
                "course",
                "shortname",
                "in course",
                "activities",
                "other",
                "total",
            ]);
            for c in &shown {
                let course = courses.get(&c.course);
                table.row(vec![
                    c.course.to_string(),
                    course.map(|c| c.shortname.clone()).unwrap_or_else(|| {
                        if c.course == 0 {
                            "(site, logins)".into()
                        } else {
                            "?".into()
                        }
                    }),
                    output::duration(c.coursetime),
                    output::duration(c.activitytime),
                    output::duration(c.othertime),
                    output::duration(c.coursetotal),
                ]);
            }
            println!("\n{}", table.render());
            let mut modules = Table::new(&["course", "cmid", "type", "activity", "time"]);
            for c in &shown {
                for m in &c.modules {
                    let label = labels.get(&m.cmid);
                    modules.row(vec![
                        c.course.to_string(),
                        m.cmid.to_string(),
                        m.module.clone().unwrap_or_else(|| "N.C.".into()),
                        label
                            .map(|l| l.name.clone())
                            .unwrap_or_else(|| "N.C.".into()),
                        output::duration(m.elapsed),
                    ]);
                }
            }
            if !modules.is_empty() {
                print!("{}", modules.render());
            }
        }
    }
    Ok(())
}

fn parse_as_user(app: &App, as_user: Option<&str>) -> Result<(String, String), String> {
    match as_user {
        None => Ok(("admin".into(), app.wwwroot().to_string())),
        Some(text) => super::parse_as_user(text),
    }
}

async fn collect(app: &Arc<App>, args: CollectArgs, json_out: bool) -> CmdResult {
    let (caller_name, caller_home) = parse_as_user(app, args.as_user.as_deref())?;
    let timefrom = args
        .from
        .as_deref()
        .map(output::parse_time)
        .transpose()?
        .unwrap_or(0);
    let peers = crate::collect::target_peers(app, &args.peers).await?;
    if peers.is_empty() && !args.include_local {
        return Err("no peers to ask: subscribe to use_stats on some (`usestats peer subscribe PEER use_stats`)".into());
    }
    let mut collection = crate::collect::collect(
        app,
        peers,
        (&caller_name, &caller_home),
        &args.username,
        args.scope,
        timefrom,
    )
    .await;
    if args.include_local {
        collection.hosts.insert(
            0,
            crate::collect::local_result(app, &args.username, args.scope, timefrom).await,
        );
        collection.total_minutes = collection.hosts.iter().filter_map(|h| h.minutes).sum();
    }
    if json_out {
        print_json(&collection);
        return Ok(());
    }
    println!(
        "user {} asked as {}, scope {}, from {}",
        collection.username,
        collection.caller,
        collection.scope,
        output::time(collection.timefrom)
    );
    let mut table = Table::new(&["host", "outcome", "latency", "minutes", "courses", "error"]);
    for h in &collection.hosts {
        table.row(vec![
            h.wwwroot.clone(),
            format!("{:?}", h.status).to_lowercase(),
            format!("{} ms", h.latency_ms),
            h.minutes
                .map(|m| m.to_string())
                .unwrap_or_else(|| "-".into()),
            h.courses
                .iter()
                .map(|c| format!("{} {}m", c.shortname, c.minutes))
                .collect::<Vec<_>>()
                .join(", "),
            h.error.clone().unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    println!(
        "total {} minutes over {} hosts ({} ms)",
        collection.total_minutes,
        collection
            .hosts
            .iter()
            .filter(|h| h.minutes.is_some())
            .count(),
        collection.elapsed_ms
    );
    Ok(())
}

/// A token's label is printed in `token list` tables: plain text of one line, bounded.
fn check_label(label: &str) -> CmdResult {
    const MAX: usize = 100;
    if label.chars().any(char::is_control) {
        return Err("--label: control characters (newlines, escapes) are not allowed".into());
    }
    if label.chars().count() > MAX {
        return Err(format!("--label: at most {MAX} characters"));
    }
    Ok(())
}

async fn token(app: &Arc<App>, action: TokenAction, json_out: bool) -> CmdResult {
    match action {
        TokenAction::Create {
            wwwroot,
            username,
            label,
            expires,
            allowed_ips,
        } => {
            let expires = expires.as_deref().map(output::parse_time).transpose()?;
            if let Some(at) = expires
                && at <= app.now()
            {
                return Err(format!(
                    "--expires {} is in the past: the token could never be used (give a later date, or no --expires for a token that does not expire)",
                    output::time(at)
                ));
            }
            crate::ws::tokens::validate_ranges(&allowed_ips)
                .map_err(|e| format!("--allowed-ips: {e}"))?;
            check_label(&label)?;
            let (plain, created) =
                crate::ws::tokens::create(app, &wwwroot, &username, &label, expires, &allowed_ips)
                    .await?;
            if json_out {
                print_json(
                    &json!({"token": plain, "id": created.id, "prefix": created.token_prefix}),
                );
            } else {
                println!("token {plain}");
                println!(
                    "(shown once: store it now; `usestats token list` shows it as {}…)",
                    created.token_prefix
                );
            }
            Ok(())
        }
        TokenAction::List => {
            let rows = app
                .state
                .run(|c| {
                    let tokens = state::list_tokens(c)?;
                    let mut out = Vec::new();
                    for t in tokens {
                        let grant = state::grant_by_id(c, t.grant_id)?;
                        out.push((t, grant));
                    }
                    Ok(out)
                })
                .await
                .map_err(|e| e.to_string())?;
            if json_out {
                print_json(
                    &rows
                        .iter()
                        .map(|(t, g)| json!({"token": t, "grant": g}))
                        .collect::<Vec<_>>(),
                );
                return Ok(());
            }
            let mut table = Table::new(&[
                "id",
                "prefix",
                "grant",
                "label",
                "created",
                "expires",
                "allowed ips",
                "last used",
                "state",
            ]);
            for (t, g) in rows {
                table.row(vec![
                    t.id.to_string(),
                    format!("{}…", t.token_prefix),
                    g.map(|g| format!("{}@{}", g.username, g.home_wwwroot))
                        .unwrap_or_else(|| "-".into()),
                    t.label,
                    output::time(t.created_at),
                    t.expires_at
                        .map(output::time)
                        .unwrap_or_else(|| "never".into()),
                    if t.allowed_ips.is_empty() {
                        "any".into()
                    } else {
                        t.allowed_ips
                    },
                    t.last_used_at
                        .map(output::time)
                        .unwrap_or_else(|| "-".into()),
                    if t.revoked {
                        "revoked".into()
                    } else {
                        "active".into()
                    },
                ]);
            }
            if table.is_empty() {
                println!("no tokens yet: `usestats token create WWWROOT USERNAME`");
            } else {
                print!("{}", table.render());
            }
            Ok(())
        }
        TokenAction::Revoke { token } => {
            let t = token.trim_end_matches('…').to_string();
            let n = app
                .state
                .run(move |c| state::revoke_token(c, &t))
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!("no active token {token}"));
            }
            println!("revoked {n} token(s)");
            Ok(())
        }
    }
}

async fn audit(
    app: &Arc<App>,
    peer: Option<String>,
    since: Option<String>,
    limit: i64,
    json_out: bool,
) -> CmdResult {
    let since = since.as_deref().map(output::parse_time).transpose()?;
    let entries = app
        .state
        .run(move |c| state::query_audit(c, peer.as_deref(), since, limit.clamp(1, 100_000)))
        .await
        .map_err(|e| e.to_string())?;
    if json_out {
        print_json(&entries);
        return Ok(());
    }
    let mut table = Table::new(&[
        "time", "channel", "peer", "verified", "from", "method", "caller", "target", "status",
        "ms", "in", "out",
    ]);
    // Rows written before escaping on the way in may hold raw control characters: a
    // terminal must never receive them.
    let shown = |text: &str| crate::untrusted::for_terminal(text);
    for e in entries {
        table.row(vec![
            output::time(e.time),
            shown(&e.channel),
            shown(&e.peer),
            if e.verified { "yes" } else { "NO (claimed)" }.to_string(),
            shown(&e.remote_addr),
            shown(&e.method),
            shown(&e.caller),
            shown(&e.target),
            shown(&e.status),
            e.latency_ms.to_string(),
            e.bytes_in.to_string(),
            e.bytes_out.to_string(),
        ]);
    }
    if table.is_empty() {
        println!("no calls recorded");
    } else {
        print!("{}", table.render());
    }
    Ok(())
}

async fn doctor(path: &Path, json_out: bool) -> CmdResult {
    let report = crate::health::doctor(path).await;
    if json_out {
        print_json(&report);
    } else {
        for check in &report {
            println!("{:<5} {:<22} {}", check.status, check.name, check.detail);
        }
    }
    if report.iter().any(|c| c.status == "FAIL") {
        return Err("some checks failed".into());
    }
    Ok(())
}

/// The course `--course` names: an id or a shortname, or `id:N` / `shortname:S` to say which.
/// A bare text that is one course's id and another's shortname is refused, not guessed.
fn course_for_cli(
    conn: &mut crate::store::DbConnection,
    source: &Source,
    text: &str,
) -> Result<crate::store::source::Course, crate::store::StoreError> {
    let mut find = |field, value| {
        source
            .find_course(conn, field, value)
            .map_err(|e| crate::store::StoreError::Invalid(e.to_string()))
    };
    let (by_id, by_shortname) = match (text.strip_prefix("id:"), text.strip_prefix("shortname:")) {
        (Some(id), _) => (find(CourseField::Id, id)?, None),
        (_, Some(shortname)) => (None, find(CourseField::ShortName, shortname)?),
        _ => (
            find(CourseField::Id, text)?,
            find(CourseField::ShortName, text)?,
        ),
    };
    match (by_id, by_shortname) {
        (Some(a), Some(b)) if a.id != b.id => Err(crate::store::StoreError::Invalid(format!(
            "--course {text} is ambiguous: it is course id {} and the shortname of course id {}; say `id:{text}` or `shortname:{text}`",
            a.id, b.id
        ))),
        (Some(course), _) | (None, Some(course)) => Ok(course),
        (None, None) => Err(crate::store::StoreError::Invalid(format!(
            "no course {text}"
        ))),
    }
}

/// Whether the source database has an `mnet_host` row for `wwwroot` (false when it cannot
/// be read at all, e.g. before `usestats demo`).
async fn source_knows_host(app: &Arc<App>, wwwroot: &str) -> bool {
    let Ok(source) = Source::new(&app.config.source.prefix) else {
        return false;
    };
    let wwwroot = wwwroot.to_string();
    app.source
        .run(move |c| {
            Ok(source
                .mnet_host_id_by_wwwroot(c, &wwwroot)
                .ok()
                .flatten()
                .is_some())
        })
        .await
        .unwrap_or(false)
}
