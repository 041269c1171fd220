//! `usestats peer add|list|show|remove|publish|subscribe|set|check`: MNET peers.

use std::io::{BufRead, Write};
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::json;

use super::CmdResult;
use super::common::{find_peer, print_json};
use crate::app::App;
use crate::cli::output::{self, Table};
use crate::cli::{PeerAction, PeerAddArgs, ServiceArgs};
use crate::crypto;
use crate::mnet::registration::{self, Registration, Sponsor};
use crate::store::source::Source;
use crate::store::state;

pub(super) async fn run(app: &Arc<App>, action: PeerAction, json_out: bool) -> CmdResult {
    match action {
        PeerAction::Add(args) => add(app, args, json_out).await,
        PeerAction::List { all } => list(app, all, json_out).await,
        PeerAction::Show { peer } => show(app, peer, json_out).await,
        PeerAction::Remove { peer } => remove(app, peer).await,
        PeerAction::Publish(args) => set_service(app, args, true, json_out).await,
        PeerAction::Subscribe(args) => set_service(app, args, false, json_out).await,
        PeerAction::Set {
            peer,
            connect_timeout_ms,
            timeout_ms,
            ssl_verification,
        } => set(app, peer, connect_timeout_ms, timeout_ms, ssl_verification).await,
        PeerAction::Check { peer } => check(app, peer, json_out).await,
    }
}

async fn add(app: &Arc<App>, args: PeerAddArgs, json_out: bool) -> CmdResult {
    let PeerAddArgs {
        url,
        application,
        yes,
        name,
        ssl_verification,
        allow_expired,
    } = args;
    let wwwroot = registration::operator_wwwroot(&url, app.wwwroot())?;
    let vetted =
        registration::fetch(&app.client, &wwwroot, application.name(), ssl_verification).await?;
    let info = vetted.info.clone();
    if vetted.expired(app.now()) && !allow_expired {
        // Moodle refuses an expired certificate at registration too.
        bail!(
            "the certificate {wwwroot} sent expired on {}: ask its administrator to renew the site's key (Moodle renews it on cron), or pass --allow-expired to register it anyway",
            output::time(info.not_after)
        );
    }
    if !json_out {
        println!("peer         {wwwroot} ({})", application.name());
        println!("subject      {}", info.subject);
        println!("fingerprint  {}", info.fingerprint_sha1);
        println!("expires      {}", output::time(info.not_after));
    }
    if !yes && !confirm("Register this peer with this certificate?") {
        bail!("not registered");
    }
    let peer = registration::register(
        &app.client,
        &app.state,
        Registration {
            vetted,
            application: application.name().to_string(),
            name,
            ssl_verification,
            sponsor: Sponsor::Operator,
        },
        app.now(),
    )
    .await?
    .with_context(|| format!("registering {wwwroot}"))?;
    if json_out {
        print_json(&peer);
    } else {
        println!(
            "registered {} as \"{}\". Next: `usestats peer publish {} use_stats` and/or `peer subscribe`.",
            peer.wwwroot,
            crate::text::terminal(&peer.name),
            peer.wwwroot
        );
        if app.config.source.url.trim().is_empty() && !source_knows_host(app, &peer.wwwroot).await {
            println!(
                "note: the embedded (demo) database has no users from {0}; its people cannot call use_stats here until they have accounts: `usestats demo --remote-host {0}` adds some (an admin and a few learners).",
                peer.wwwroot
            );
        }
    }
    Ok(())
}

async fn list(app: &Arc<App>, all: bool, json_out: bool) -> CmdResult {
    let peers = app
        .state
        .run(move |c| state::all_peers(c, all))
        .await
        .context("listing peers")?;
    let mut services = Vec::new();
    for peer in &peers {
        let id = peer.id;
        services.push(
            app.state
                .run(move |c| state::effective_services(c, id))
                .await
                .with_context(|| format!("reading the services of {}", peer.wwwroot))?,
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
            peer.application.to_string(),
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

async fn show(app: &Arc<App>, peer: String, json_out: bool) -> CmdResult {
    let peer = find_peer(app, &peer).await?;
    let id = peer.id;
    let (services, history) = app
        .state
        .run::<_, crate::store::StoreError, _>(move |c| {
            Ok((
                state::own_services(c, id)?,
                state::peer_certificate_history(c, id)?,
            ))
        })
        .await
        .with_context(|| {
            format!(
                "reading the services and past certificates of {}",
                peer.wwwroot
            )
        })?;
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
    println!("name             {}", crate::text::terminal(&peer.name));
    println!("application      {}", peer.application);
    println!("deleted          {}", peer.deleted);
    println!("tls verification {}", peer.ssl_verification.level());
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
        crate::text::terminal(peer.last_error.as_deref().unwrap_or("-"))
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

async fn remove(app: &Arc<App>, peer: String) -> CmdResult {
    let peer = find_peer(app, &peer).await?;
    let id = peer.id;
    app.state
        .run(move |c| state::delete_peer(c, id))
        .await
        .with_context(|| format!("deleting {}", peer.wwwroot))?;
    println!("deleted {}", peer.wwwroot);
    Ok(())
}

async fn set(
    app: &Arc<App>,
    peer: String,
    connect_timeout_ms: Option<i64>,
    timeout_ms: Option<i64>,
    ssl_verification: Option<state::SslVerification>,
) -> CmdResult {
    let peer = find_peer(app, &peer).await?;
    let id = peer.id;
    let connect = connect_timeout_ms.or(peer.connect_timeout_ms);
    let total = timeout_ms.or(peer.request_timeout_ms);
    if connect.is_some_and(|v| v <= 0) || total.is_some_and(|v| v <= 0) {
        bail!("timeouts must be positive milliseconds");
    }
    app.state
        .run::<_, crate::store::StoreError, _>(move |c| {
            state::set_peer_timeouts(c, id, connect, total)?;
            if let Some(level) = ssl_verification {
                state::set_peer_ssl_verification(c, id, level)?;
            }
            Ok(())
        })
        .await
        .with_context(|| format!("updating {}", peer.wwwroot))?;
    println!("updated {}", peer.wwwroot);
    Ok(())
}

async fn check(app: &Arc<App>, peer: Option<String>, json_out: bool) -> CmdResult {
    let peers = match peer {
        Some(p) => vec![find_peer(app, &p).await?],
        None => app
            .state
            .run(|c| state::all_peers(c, false))
            .await
            .context("listing peers")?,
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
        bail!("some peers have problems");
    }
    Ok(())
}

/// `peer publish` (`publish` true) and `peer subscribe`: one service for a peer or all hosts.
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
            bail!("usage: peer publish|subscribe PEER SERVICE, or --all-hosts SERVICE");
        }
    };
    if app.services.service(&service).is_none() && publish {
        bail!(
            "we do not offer a service named {service} (offered: {})",
            app.services
                .list
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let target = match peer_text {
        Some(p) => find_peer(app, &p).await?,
        None => app
            .state
            .run(state::all_hosts)
            .await
            .context("reading the All Hosts row")?,
    };
    let on = !args.off;
    let who = if target.is_all_hosts() {
        "all hosts".to_string()
    } else {
        target.wwwroot.clone()
    };
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
        .with_context(|| format!("setting {service} for {who}"))?;
    if json_out {
        print_json(&row);
    } else {
        println!(
            "{service} for {who}: publish={} subscribe={}",
            row.publish, row.subscribe
        );
    }
    Ok(())
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

/// Whether the source database has an `mnet_host` row for `wwwroot` (false when it cannot
/// be read at all, e.g. before `usestats demo`).
async fn source_knows_host(app: &Arc<App>, wwwroot: &str) -> bool {
    let Ok(source) = Source::new(&app.config.source.prefix) else {
        return false;
    };
    let wwwroot = wwwroot.to_string();
    app.source
        .run::<_, crate::store::StoreError, _>(move |c| {
            Ok(source
                .mnet_host_id_by_wwwroot(c, &wwwroot)
                .ok()
                .flatten()
                .is_some())
        })
        .await
        .unwrap_or(false)
}
