//! `use_stats_rpc_get_stats`: time spent by a user, here or (forwarded) on another peer.

use super::Site;
use super::*;
use crate::mnet::services::CallContext;
use crate::reports::{LearnerAsk, LearnerError, LearnerReport};
use crate::stats::Window;
use crate::xmlrpc::Value;

pub async fn get_stats(site: Site, ctx: CallContext, params: Vec<Value>) -> Value {
    let json_response = json_response_param(params.get(5));
    get_stats_answer(&site, &ctx, &params)
        .await
        .into_value(json_response)
}

pub(super) async fn get_stats_answer(site: &Site, ctx: &CallContext, params: &[Value]) -> Answer {
    let caller = match authenticate(site, ctx, params.first()).await {
        Ok(caller) => caller,
        Err(answer) => return answer,
    };
    let GetStatsParams {
        target,
        whereroot,
        scope,
        timefrom,
        timefrom_text,
    } = match GetStatsParams::parse(params) {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    let allowed = if scope == Scope::Site {
        caller.grant.site
    } else {
        caller.grant.course
    };
    if !allowed {
        return Answer::fail(
            RPC_FAILURE_CAPABILITY,
            "Local user's identity has no capability to run",
        );
    }
    if let Some(remote) = forward_target(site, &whereroot) {
        let params = vec![
            relay_caller(site, &caller),
            Value::String(target),
            Value::String(String::new()),
            Value::String((scope as i64).to_string()),
            Value::Int(timefrom),
        ];
        return forward(site, &remote, GET_STATS, params, true).await;
    }
    local_stats(site, &target, scope, timefrom, &timefrom_text).await
}

/// The local path without any caller: what this host would answer for `target`.
pub async fn local_stats_value(site: &Site, target: &str, scope: Scope, timefrom: i64) -> Value {
    local_stats(site, target, scope, timefrom, &timefrom.to_string())
        .await
        .into_value(true)
}

pub(super) async fn local_stats(
    site: &Site,
    target: &str,
    scope: Scope,
    timefrom: i64,
    timefrom_text: &str,
) -> Answer {
    // E13: the window is [timefrom, now]; a `timefrom` later than now (E15) holds no row,
    // which is the empty set below, a success.
    let now = site.now();
    let asked = LearnerAsk {
        username: target.to_string(),
        course: None,
        window: Window {
            from: timefrom,
            to: now,
            now,
        },
        sessions: false,
        labels: scope.modules(),
    };
    match site.reports.learner(asked).await {
        Err(LearnerError::Prefix(e)) => Answer::fail(RPC_FAILURE, e.to_string()),
        Err(LearnerError::NoUser(_)) => {
            Answer::fail(RPC_FAILURE_RECORD, "Target user does not exist.")
        }
        Err(e) => data_unavailable(e),
        Ok(LearnerReport {
            user,
            report,
            courses,
            labels,
            ..
        }) => {
            tracing::debug!(
                target_user = %user.username,
                rows = report.rows_extracted,
                total_s = report.total,
                estimator = %report.estimator,
                "use_stats computed"
            );
            if report.rows_extracted == 0 {
                return Answer::ok("<USE_STATS><EMPTYSET /></USE_STATS>".into());
            }
            Answer::ok(stats_message(
                &user,
                &report,
                scope,
                timefrom_text,
                &courses,
                &labels,
            ))
        }
    }
}
