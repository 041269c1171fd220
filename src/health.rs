//! Peer health checks (`usestats peer check`) and the operator's `usestats doctor`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::app::App;
use crate::config::Config;
use crate::crypto;
use crate::store::state::{self, Peer};

#[derive(Debug, Clone, Serialize)]
pub struct PeerCheck {
    pub wwwroot: String,
    pub keyswap_ok: bool,
    /// The certificate the peer serves now is the one we hold.
    pub certificate_current: bool,
    pub call_ok: bool,
    pub latency_ms: u64,
    pub clock_offset: Option<i64>,
    pub key_expires: i64,
    pub problem: Option<String>,
}

/// Keyswap (is the peer up, is our copy of its key current?), then a signed and encrypted
/// `system/listServices` (does the whole pipeline work, what is its clock?). Peers are
/// checked concurrently.
pub async fn check_peers(app: &Arc<App>, peers: Vec<Peer>) -> Vec<PeerCheck> {
    let mut tasks = Vec::new();
    for peer in peers {
        let app = app.clone();
        tasks.push(tokio::spawn(async move { check_peer(&app, peer).await }));
    }
    let mut out = Vec::new();
    for task in tasks {
        if let Ok(check) = task.await {
            out.push(check);
        }
    }
    out.sort_by(|a, b| a.wwwroot.cmp(&b.wwwroot));
    out
}

async fn check_peer(app: &Arc<App>, peer: Peer) -> PeerCheck {
    let started = Instant::now();
    let mut problems = Vec::new();
    let fetched = app.client.fetch_certificate(&peer).await;
    let keyswap_ok = fetched.is_ok();
    let certificate_current = match &fetched {
        Ok(pem) => *pem == peer.public_key,
        Err(e) => {
            problems.push(format!("keyswap: {e}"));
            false
        }
    };
    if keyswap_ok && !certificate_current {
        problems.push("the peer serves a different certificate than the one on file (it will be followed on the next call if the peer rotated properly)".into());
    }
    let call = app
        .client
        .call_detailed(&peer, "system/listServices", Vec::new())
        .await;
    let (call_ok, clock_offset) = match &call {
        Ok(reply) => (true, Some(reply.clock_offset)),
        Err(e) => {
            problems.push(format!("call: {e}"));
            (false, None)
        }
    };
    let id = peer.id;
    let key_expires = app
        .state
        .run(move |c| state::peer_by_id(c, id))
        .await
        .ok()
        .flatten()
        .map(|p| p.public_key_expires)
        .unwrap_or(peer.public_key_expires);
    if key_expires != 0 && key_expires < app.now() {
        problems.push("the certificate we hold for it has expired (Moodle keeps using such keys; a keyswap refreshes it)".into());
    }
    PeerCheck {
        wwwroot: peer.wwwroot,
        keyswap_ok,
        certificate_current,
        call_ok,
        latency_ms: started.elapsed().as_millis() as u64,
        clock_offset,
        key_expires,
        problem: (!problems.is_empty()).then(|| problems.join("; ")),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    /// OK, WARN or FAIL.
    pub status: &'static str,
    pub detail: String,
}

fn check(name: &str, status: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        status,
        detail: detail.into(),
    }
}

/// Our certificate must name our wwwroot as Moodle's `check_credentials` reads it (CN = the
/// wwwroot cut to 64 characters, subjectAltName attribute = the whole wwwroot): peers
/// refuse any other, so a mismatch (a wwwroot edited in the config) fails loudly.
fn certificate_check(app: &App) -> Check {
    let current = app.keyring().current.clone();
    match crypto::check_credentials(&current.cert, app.wwwroot()) {
        Ok(info) => check(
            "certificate",
            "OK",
            format!(
                "names {}",
                info.subject_alt_name
                    .or(info.common_name)
                    .unwrap_or_default()
            ),
        ),
        Err(problem) => check(
            "certificate",
            "FAIL",
            format!(
                "{problem}: peers will refuse our keyswap and calls; run `usestats keys rotate` to make a key pair for {}",
                app.wwwroot()
            ),
        ),
    }
}

/// Files holding secrets readable by others (made by an older version, or copied): named
/// so the operator can close them.
fn file_modes_check(app: &App) -> Check {
    let config = &app.config.path;
    let mut loose: Vec<String> = crate::files::loose_mode_beyond_own_group(config)
        .map(|m| format!("{} ({m:o})", config.display()))
        .into_iter()
        .collect();
    let state = app.config.state_url();
    if app.state.kind() == crate::store::DbKind::Sqlite && !state.starts_with("file:") {
        let state = std::path::Path::new(&state);
        loose.extend(
            crate::files::loose_mode(state).map(|m| format!("{} ({m:o})", state.display())),
        );
    }
    if loose.is_empty() {
        check(
            "file modes",
            "OK",
            "config and state database readable by their owner only",
        )
    } else {
        check(
            "file modes",
            "WARN",
            format!(
                "readable by others: {}; they may hold passwords and tokens: chmod 600",
                loose.join(", ")
            ),
        )
    }
}

/// The `serve` instances that beat on this state in the last five minutes: a summary, a
/// check each that their versions and keys agree, and one line per instance. Rows come from
/// a database other processes write: their text is escaped for the terminal.
pub fn instance_checks(rows: &[state::InstanceRow], now: i64) -> Vec<Check> {
    use crate::instances::{LIVE_WITHIN_SECS, is_live, spread};
    if rows.is_empty() {
        return vec![check(
            "instances",
            "OK",
            "no `usestats serve` has beaten on this state in the last 5 minutes",
        )];
    }
    let live = rows.iter().filter(|r| is_live(r, now)).count();
    let mut out = vec![check(
        "instances",
        "OK",
        format!(
            "{} seen in the last 5 minutes, {live} beating now",
            rows.len()
        ),
    )];
    let groups = |value: fn(&state::InstanceRow) -> &str| {
        spread(rows, now, value)
            .iter()
            .map(|(value, ids)| format!("{} on {}", crate::text::terminal(value), ids.join(", ")))
            .collect::<Vec<_>>()
    };
    // Only the instances beating now are compared; each row below says when it last beat.
    if live > 0 {
        out.push(agreement(
            "instance versions",
            groups(|r| &r.version),
            "expected during a rolling upgrade, otherwise upgrade the older ones",
        ));
        out.push(agreement(
            "instance keys",
            groups(|r| &r.key_fingerprint),
            "right after a key rotation this lasts a few seconds; longer means the instances on the old key did not pick up the rotation (see their logs; a restart loads the current key)",
        ));
    }
    for row in rows {
        let age = now - row.seen_at;
        let detail = format!(
            "{} pid {}, version {}, listen {}, key {}, last beat {age} s ago",
            crate::text::terminal(&row.host),
            row.pid,
            crate::text::terminal(&row.version),
            crate::text::terminal(&row.listen),
            crate::text::terminal(&row.key_fingerprint),
        );
        out.push(if is_live(row, now) {
            check(&format!("instance {}", crate::text::terminal(&row.id)), "OK", detail)
        } else {
            check(
                &format!("instance {}", crate::text::terminal(&row.id)),
                "WARN",
                format!(
                    "{detail}: no beat for over {LIVE_WITHIN_SECS} s, so it stopped without a clean shutdown or is stuck"
                ),
            )
        });
    }
    out
}

/// OK when every running instance shows one value, WARN naming each value and its instances
/// otherwise.
fn agreement(name: &str, groups: Vec<String>, when_they_differ: &str) -> Check {
    if groups.len() > 1 {
        check(
            name,
            "WARN",
            format!(
                "the running instances differ: {}; {when_they_differ}",
                groups.join("; ")
            ),
        )
    } else {
        check(
            name,
            "OK",
            format!("the running instances agree: {}", groups.join("")),
        )
    }
}

/// Our key files (a SQLite state; on PostgreSQL the pairs are in the state database and each
/// is checked as it is opened): FAIL when the current key is not its certificate's (a
/// rotation cut short), WARN for each archived entry that cannot be used.
fn key_file_checks(config: &Config) -> Vec<Check> {
    if crate::store::DbKind::of(&config.state_url()) != crate::store::DbKind::Sqlite {
        return Vec::new();
    }
    let store = crypto::KeyStore::new(config.keys_dir(), config.keys.keep_archived);
    match store.inspect() {
        Ok(problems) if problems.is_empty() => vec![check(
            "key files",
            "OK",
            format!(
                "{}: the current key is its certificate's",
                store.dir().display()
            ),
        )],
        Ok(problems) => problems
            .into_iter()
            .map(|p| {
                check(
                    "key files",
                    if p.current_mismatch { "FAIL" } else { "WARN" },
                    p.detail,
                )
            })
            .collect(),
        Err(e) => vec![check("key files", "FAIL", e.to_string())],
    }
}

/// `usestats doctor`: the configuration at `path`, then what [`crypto_checks`],
/// [`local_checks`] and [`peer_checks`] find with it.
pub async fn doctor(path: &Path) -> Vec<Check> {
    let mut out = Vec::new();
    let config = match Config::load(path) {
        Ok(config) => {
            out.push(config_check(path, &config));
            config
        }
        Err(e) => {
            out.push(check("config", "FAIL", e.to_string()));
            return out;
        }
    };
    match crypto::init() {
        Ok(status) => out.extend(crypto_checks(&status)),
        Err(e) => {
            out.push(check("crypto", "FAIL", e.to_string()));
            return out;
        }
    }
    // Before the application opens them: opening recovers a mismatched pair (and says so in
    // the log), and the operator must hear of it here too.
    out.extend(key_file_checks(&config));
    let app = match App::open(config) {
        Ok(app) => app,
        Err(e) => {
            out.push(check("startup", "FAIL", e.to_string()));
            return out;
        }
    };
    out.extend(local_checks(&app).await);
    out.extend(peer_checks(&app).await);
    out
}

/// The doctor's checks on a running daemon (the console's overview): the configuration and
/// crypto it started with, then [`local_checks`], and [`peer_checks`] when `with_peers`
/// (those call every peer, so they take as long as the slowest).
pub async fn running_checks(app: &Arc<App>, with_peers: bool) -> Vec<Check> {
    let mut out = vec![config_check(&app.config.path, &app.config)];
    out.extend(crypto_checks(&app.crypto));
    out.extend(local_checks(app).await);
    if with_peers {
        out.extend(peer_checks(app).await);
    }
    out
}

fn config_check(path: &Path, config: &Config) -> Check {
    check(
        "config",
        "OK",
        format!("{} (wwwroot {})", path.display(), config.site.wwwroot),
    )
}

/// OpenSSL, RC4 and SHA-1 signatures, as the crypto self-test found them.
pub fn crypto_checks(status: &crypto::CryptoStatus) -> Vec<Check> {
    vec![
        check("openssl", "OK", status.openssl_version.clone()),
        check(
            "rc4",
            if status.legacy_provider { "OK" } else { "WARN" },
            if status.legacy_provider {
                "OpenSSL legacy provider loaded".to_string()
            } else {
                "OpenSSL legacy provider missing: using the built-in RC4".to_string()
            },
        ),
        check("sha1 signatures", "OK", "RSA-SHA1 sign and verify work"),
    ]
}

/// What needs no peer: our keys and certificate, file modes, the state and source
/// databases, the instances' heartbeats.
pub async fn local_checks(app: &Arc<App>) -> Vec<Check> {
    let mut out = Vec::new();
    let info = app.keyring().current.info();
    let days_left = (info.not_after - app.now()) / 86_400;
    let rotate_before = i64::from(app.config.keys.rotate_before_days);
    out.push(check(
        "keys",
        if days_left < 0 {
            "FAIL"
        } else if days_left <= rotate_before.max(1) {
            "WARN"
        } else {
            "OK"
        },
        format!(
            "{} expires in {} days; {} archived key(s) in {}",
            info.fingerprint_sha1,
            days_left,
            app.keyring().archived.len(),
            app.key_home.describe()
        ),
    ));
    out.push(certificate_check(app));
    out.push(file_modes_check(app));
    let version = app.state.run(crate::store::state_schema_version).await;
    match version {
        Ok(v) => out.push(check(
            "state database",
            "OK",
            format!(
                "{}, schema {}",
                app.state.kind(),
                v.unwrap_or_else(|| "none".into())
            ),
        )),
        Err(e) => out.push(check("state database", "FAIL", e.to_string())),
    }
    out.push(audit_check(app).await);
    if let Some(access) = state_access_check(app).await {
        out.push(access);
    }
    match crate::instances::seen(&app.state, app.now()).await {
        Ok(rows) => out.extend(instance_checks(&rows, app.now())),
        Err(e) => out.push(check(
            "instances",
            "WARN",
            format!("cannot read the instances' heartbeats: {e}"),
        )),
    }
    if app.config.engine.compiled {
        match app.state.run(crate::store::state::compiled_meta).await {
            Ok(Some(meta)) => out.push(match crate::compiled::first_compile_line(&meta) {
                Some(line) => check("compiled stats", "WARN", line),
                None => check(
                    "compiled stats",
                    "OK",
                    format!("log read up to id {}", meta.high_water),
                ),
            }),
            Ok(None) => out.push(check(
                "compiled stats",
                "WARN",
                "not compiled yet: `serve` compiles within its first pass, or run `usestats compile`",
            )),
            Err(e) => out.push(check("compiled stats", "WARN", e.to_string())),
        }
    }
    let source = app.reports.source().cloned();
    let logs = match source {
        Ok(source) => {
            app.source
                .run::<_, crate::reports::ReportError, _>(move |c| Ok(source.log_size(c)?))
                .await
        }
        Err(e) => Err(e.into()),
    };
    match logs {
        Ok(size) => out.push(check(
            "source database",
            if size.max_id.is_some() { "OK" } else { "WARN" },
            format!(
                "{}, {} under prefix {}",
                app.source.kind(),
                match (size.max_id, size.estimate) {
                    (None, _) => "no log rows".to_string(),
                    (Some(_), Some(n)) => format!("about {n} log rows (estimate: {}, not a count)", size.source),
                    (Some(max), None) => format!("log ids up to {max} (no row estimate yet: the table was never analysed)"),
                },
                app.config.source.prefix
            ),
        )),
        Err(e) => out.push(check(
            "source database",
            "WARN",
            format!("cannot read {}logstore_standard_log ({e}); run `usestats demo` or point [source] at Moodle", app.config.source.prefix),
        )),
    }
    out.push(dedication_check(app).await);
    out
}

/// block_dedication's settings as the dedication estimator reads them (docs/engine.md §8.2):
/// WARN when `config_plugins` cannot be read (a read-only role granted before the estimators
/// existed, or a demo database made before its migration).
async fn dedication_check(app: &Arc<App>) -> Check {
    let name = "dedication settings";
    let source = match app.reports.source().cloned() {
        Ok(source) => source,
        Err(e) => return check(name, "WARN", e.to_string()),
    };
    let found = app
        .source
        .run::<_, crate::reports::ReportError, _>(move |c| {
            let saved = source.plugin_config(c, crate::store::source::DEDICATION_PLUGIN)?;
            Ok((saved.len(), source.dedication_settings(c)?))
        })
        .await;
    match found {
        Ok((saved, s)) => check(
            name,
            "OK",
            format!(
                "session limit {} s, sessions of {} s or less ignored ({})",
                s.session_limit,
                s.ignore_sessions_limit,
                if saved == 0 {
                    "block_dedication never configured: its defaults"
                } else {
                    "from block_dedication's settings"
                }
            ),
        ),
        Err(e) => check(
            name,
            "WARN",
            format!(
                "cannot read {}config_plugins ({e}): the dedication estimators need SELECT on it (README, read-only role); `usestats demo` adds it to a demo database",
                app.config.source.prefix
            ),
        ),
    }
}

/// Who besides us can reach a PostgreSQL state database (SECURITY.md, "The state database"):
/// any role that may connect can exhaust the server's connections and, if it was given
/// privileges on our tables, read or lock them. WARN when CONNECT is granted to PUBLIC (the
/// default for a new database), naming the other login roles that may connect otherwise, and
/// when another role may write (so lock) `usestats_locks`. None on SQLite.
async fn state_access_check(app: &Arc<App>) -> Option<Check> {
    if app.state.kind() != crate::store::DbKind::Postgres {
        return None;
    }
    let found = app.state.run(state::state_access).await;
    Some(match found {
        Err(e) => check(
            "state access",
            "WARN",
            format!("cannot read who may connect to the state database: {e}"),
        ),
        Ok(access) => {
            let mut problems = Vec::new();
            if access.public_connect {
                problems.push(format!(
                    "every role of the server may connect to database {db} (CONNECT is granted to PUBLIC): \
                     REVOKE CONNECT ON DATABASE {db} FROM PUBLIC; GRANT CONNECT ON DATABASE {db} TO {me}; (README, \"Running several instances\")",
                    db = access.database,
                    me = access.role
                ));
            } else if !access.other_roles.is_empty() {
                problems.push(format!(
                    "other login roles may connect to database {}: {} (they may open connections; revoke CONNECT from those that need none)",
                    access.database,
                    access.other_roles.join(", ")
                ));
            }
            if !access.lock_writers.is_empty() {
                problems.push(format!(
                    "roles other than {} may write (and so lock) usestats_locks: {}; only the daemon's role should",
                    access.role,
                    access.lock_writers.join(", ")
                ));
            }
            if problems.is_empty() {
                check(
                    "state access",
                    "OK",
                    format!(
                        "only {} (and superusers) may connect to database {}",
                        access.role, access.database
                    ),
                )
            } else {
                check(
                    "state access",
                    "WARN",
                    crate::text::terminal(&problems.join("; ")),
                )
            }
        }
    })
}

/// The audit's size against its budget (`[audit] max_rows`, next to `retention_days`): call
/// rows, counts of refused requests, bytes on disk when the database says, the oldest entry.
async fn audit_check(app: &Arc<App>) -> Check {
    let size = match app.state.run(state::audit_size).await {
        Ok(size) => size,
        Err(e) => {
            return check(
                "audit",
                "WARN",
                format!("cannot read the audit's size: {e}"),
            );
        }
    };
    let budget = app.config.audit.max_rows;
    let over = budget > 0
        && (u64::try_from(size.rows).unwrap_or(0) > budget
            || u64::try_from(size.refused_rows).unwrap_or(0) > budget);
    let bytes = size
        .bytes
        .map(|b| {
            if b < 1_000_000 {
                format!(", {} kB on disk", (b + 999) / 1000)
            } else {
                format!(", {:.1} MB on disk", b as f64 / 1e6)
            }
        })
        .unwrap_or_default();
    let oldest = size
        .oldest
        .map(|t| format!(", oldest {}", crate::timefmt::time(t)))
        .unwrap_or_else(|| ", empty".into());
    let retention = match app.config.audit.retention_days {
        0 => "kept without a time limit".to_string(),
        days => format!("kept {days} days"),
    };
    let limit = match budget {
        0 => "no size budget".to_string(),
        rows => format!("budget {rows} rows each"),
    };
    check(
        "audit",
        if over { "WARN" } else { "OK" },
        format!(
            "{} call rows, {} counts of {} refused requests{bytes}{oldest}; {retention}, {limit}{}",
            size.rows,
            size.refused_rows,
            size.refused_calls,
            if over {
                " (over it: the next maintenance pass drops the oldest)"
            } else {
                ""
            }
        ),
    )
}

/// Every live peer: keyswap and a call each ([`check_peers`]), and the clock offsets they show.
pub async fn peer_checks(app: &Arc<App>) -> Vec<Check> {
    let mut out = Vec::new();
    let peers = app
        .state
        .run(|c| state::all_peers(c, false))
        .await
        .unwrap_or_default();
    let checks = check_peers(app, peers).await;
    let drift = app.config.mnet.drift_threshold_secs;
    let worst = checks
        .iter()
        .filter_map(|c| c.clock_offset)
        .map(i64::abs)
        .max();
    out.push(check(
        "clock",
        if worst.is_some_and(|w| w > drift) {
            "WARN"
        } else {
            "OK"
        },
        match worst {
            Some(w) => format!(
                "now {}; largest offset to a peer {w} s (limit {drift} s)",
                app.now()
            ),
            None => format!("now {}; no peer answered to compare with", app.now()),
        },
    ));
    if checks.is_empty() {
        out.push(check("peers", "OK", "none registered"));
    }
    for c in checks {
        out.push(check(
            &format!("peer {}", c.wwwroot),
            if c.problem.is_some() { "WARN" } else { "OK" },
            c.problem.clone().unwrap_or_else(|| {
                format!(
                    "{} ms, offset {:+} s",
                    c.latency_ms,
                    c.clock_offset.unwrap_or(0)
                )
            }),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, version: &str, key: &str, seen_at: i64) -> state::InstanceRow {
        state::InstanceRow {
            id: id.into(),
            host: "web1".into(),
            pid: 42,
            version: version.into(),
            listen: "127.0.0.1:8080".into(),
            key_fingerprint: key.into(),
            started_at: 0,
            seen_at,
        }
    }

    fn status<'a>(checks: &'a [Check], name: &str) -> Option<&'a Check> {
        checks.iter().find(|c| c.name == name)
    }

    #[test]
    fn instances_that_disagree_are_warnings_and_a_silent_one_too() {
        let now = 10_000;
        let agreeing = instance_checks(
            &[
                row("a", "1.0", "k1", now - 1),
                row("b", "1.0", "k1", now - 4),
            ],
            now,
        );
        assert!(agreeing.iter().all(|c| c.status == "OK"), "{agreeing:?}");
        assert_eq!(
            agreeing.len(),
            5,
            "summary, versions, keys, one per instance"
        );
        let keys = status(&agreeing, "instance keys").unwrap();
        assert!(keys.detail.contains("k1 on a, b"), "{keys:?}");

        let checks = instance_checks(
            &[
                row("a", "1.0", "k2", now - 1),
                row("b", "1.1", "k1", now - 2),
                row("c", "1.0", "k0", now - 200),
            ],
            now,
        );
        let keys = status(&checks, "instance keys").unwrap();
        assert_eq!(keys.status, "WARN");
        assert!(
            keys.detail.contains("k1 on b; k2 on a")
                && keys.detail.contains("did not pick up the rotation"),
            "{keys:?}"
        );
        assert!(
            !keys.detail.contains("k0"),
            "a stopped instance is not compared: {keys:?}"
        );
        assert_eq!(status(&checks, "instance versions").unwrap().status, "WARN");
        let silent = status(&checks, "instance c").unwrap();
        assert_eq!(silent.status, "WARN");
        assert!(silent.detail.contains("last beat 200 s ago"), "{silent:?}");
        assert_eq!(status(&checks, "instance a").unwrap().status, "OK");

        let none = instance_checks(&[], now);
        assert_eq!(none.len(), 1);
        assert_eq!(none[0].status, "OK");
    }
}
