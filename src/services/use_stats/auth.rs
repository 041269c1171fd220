//! Who is asking: the calling person checked against the signing peer, the source database and
//! our grants (docs/decisions.md, Authorisation).

use super::Site;
use super::*;
use crate::mnet::services::CallContext;
use crate::reports::Unavailable;
use crate::store::source::{Source, User};
use crate::store::state;
use crate::text::echo::echo;
use crate::wwwroot::Wwwroot;
use crate::xmlrpc::Value;

/// The person asking, after authentication: their local account and what they may see.
pub(super) struct Caller {
    pub(super) user: User,
    /// The person's home host as the source database spells it (`mnet_host.wwwroot`): a
    /// PHP data host looks it up by exact string when we forward (§1.4.2).
    pub(super) home_wwwroot_on_record: String,
    pub(super) grant: state::Grant,
}

/// §1.3 with docs/decisions.md, Authorisation: the struct must be complete, `remotehostroot` must be the peer
/// that signed the request, the person's home host must be known, they must have a local
/// (not deleted, not suspended) account, and a grant that the signing peer may use (their
/// home host, or a relay the grant names).
pub(super) async fn authenticate(
    site: &Site,
    ctx: &CallContext,
    callinguser: Option<&Value>,
) -> Result<Caller, Answer> {
    let member = |name: &str| {
        callinguser
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (Some(username), Some(user_home), Some(host_root)) = (
        member("username"),
        member("remoteuserhostroot"),
        member("remotehostroot"),
    ) else {
        return Err(Answer::fail(RPC_FAILURE_USER, "Bad client user format."));
    };
    if username.trim().is_empty() {
        return Err(Answer::fail(RPC_FAILURE_USER, "Empty username."));
    }
    if Wwwroot::normalized(&host_root) != ctx.peer.wwwroot {
        return Err(Answer::fail(
            RPC_FAILURE,
            format!(
                "Calling host {} is not the host that signed this request ({}).",
                echo(&host_root),
                ctx.peer.wwwroot
            ),
        ));
    }
    let source = source(site)?;
    let home = Wwwroot::normalized(&user_home);
    let found = {
        let (source, home, username) = (source.clone(), home.clone(), username.clone());
        site.source
            .run::<_, ReportError, _>(move |conn| {
                let host = source.mnet_host_id_by_wwwroot(conn, &home)?;
                match host {
                    None => Ok(None),
                    Some(id) => {
                        let on_record = source.mnet_host(conn, id)?.map(|h| h.wwwroot);
                        let user = source.find_mnet_user(conn, &username, id)?;
                        Ok(Some(user.map(|u| (u, on_record))))
                    }
                }
            })
            .await
    };
    let (user, on_record) = match found {
        Err(e) => return Err(data_unavailable(e)),
        Ok(None) => {
            return Err(Answer::fail(
                RPC_FAILURE_USER,
                format!("Calling user host {} is not registered.", echo(&user_home)),
            ));
        }
        Ok(Some(None)) => {
            return Err(Answer::fail(
                RPC_FAILURE_USER,
                "Calling user has no local account. Register remote user first",
            ));
        }
        Ok(Some(Some((user, on_record)))) => (user, on_record),
    };
    if user.suspended {
        return Err(Answer::fail(
            RPC_FAILURE_USER,
            "Calling user's local account is suspended.",
        ));
    }
    let grant = {
        let (home, username) = (home.clone(), username.clone());
        site.state
            .run(move |conn| state::grant_for(conn, &home, &username))
            .await
    };
    match grant {
        // A grant the signing peer may not use is answered as no grant at all, so that a
        // peer learns nothing about which grants exist.
        // A self-registered peer's name is anyone's first claim: it counts for no grant,
        // neither as the person's home nor as a relay, until the operator adds it.
        Ok(Some(grant)) if !ctx.peer.auto_registered && grant.honoured_from(&ctx.peer.wwwroot) => {
            Ok(Caller {
                user,
                home_wwwroot_on_record: on_record.unwrap_or(home.into_string()),
                grant,
            })
        }
        Ok(_) => Err(Answer::fail(
            RPC_FAILURE_CAPABILITY,
            "Local user's identity has no capability to run",
        )),
        Err(e) => Err(data_unavailable(e)),
    }
}

/// A failure reading Moodle's database or ours, as the caller sees it: "unavailable" only
/// when the database could not be reached; the full error goes to the log, never to the
/// caller.
pub(super) fn data_unavailable(e: impl Unavailable) -> Answer {
    tracing::error!(error = %e, "use_stats could not read its data");
    let message = if e.is_unavailable() {
        "The statistics database is unavailable; try again later."
    } else {
        "The statistics could not be computed; the site's log says why."
    };
    Answer::fail(RPC_FAILURE, message)
}

pub(super) fn source(site: &Site) -> Result<Source, Answer> {
    site.reports
        .source()
        .cloned()
        .map_err(|e| Answer::fail(RPC_FAILURE, e.to_string()))
}
