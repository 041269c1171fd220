//! The use_stats MNET service: `use_stats_rpc_get_stats` and `use_stats_rpc_get_scores`
//! (docs/engine.md §1.3–§1.6), wire-compatible with block_use_stats, not bug-compatible.
//!
//! Every answer is the wrapper `{status, errors, message}`: as a JSON string when
//! `json_response` is true or absent, as a struct when it is false. Application errors are
//! statuses inside the wrapper, never XML-RPC faults, as the PHP plugin does.

mod answer;
mod auth;
mod forward;
mod get_scores;
mod get_stats;
mod params;
mod render;

use std::sync::Arc;

use crate::mnet::node::Node;
use crate::mnet::services::{CallContext, Handler, Method, MethodFuture, Param, Service};
use crate::reports::ReportError;
use crate::store::Db;
use crate::xmlrpc::Value;

pub use answer::{Answer, php_json};
use auth::*;
use forward::*;
pub use get_scores::get_scores;
pub use get_stats::{get_stats, local_stats_value};
use params::*;
pub use render::stats_message;

pub const SERVICE: &str = "use_stats";
pub const GET_STATS: &str = "blocks/use_stats/rpclib.php/use_stats_rpc_get_stats";
pub const GET_SCORES: &str = "blocks/use_stats/rpclib.php/use_stats_rpc_get_scores";

pub const RPC_TEST: i64 = 100;
pub const RPC_SUCCESS: i64 = 200;
pub const RPC_FAILURE: i64 = 500;
pub const RPC_FAILURE_USER: i64 = 501;
pub const RPC_FAILURE_DATA: i64 = 503;
pub const RPC_FAILURE_CAPABILITY: i64 = 510;
pub const RPC_FAILURE_RECORD: i64 = 520;

pub const SITE_SCOPE: i64 = Scope::Site as i64;
pub const COURSE_SCOPE: i64 = Scope::Courses as i64;
pub const MODULE_SCOPE: i64 = Scope::Modules as i64;

/// How much detail `get_stats` gives (`statsscope`): each level includes the ones below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// The site total only.
    Site = 1,
    /// And the time per course.
    Courses = 2,
    /// And the time per activity in each course.
    Modules = 3,
}

impl Scope {
    /// The plugin compares the scope with `>=`: below 1 acts as 1, above 3 as 3.
    pub fn from_plugin(value: i64) -> Scope {
        match value {
            i64::MIN..=1 => Scope::Site,
            2 => Scope::Courses,
            _ => Scope::Modules,
        }
    }

    pub fn courses(self) -> bool {
        self >= Scope::Courses
    }

    pub fn modules(self) -> bool {
        self >= Scope::Modules
    }
}

/// What the use_stats methods work with: the MNET node (keys, state, client, clock,
/// configuration), the Moodle database and the reports of it.
#[derive(Clone)]
pub struct Site {
    pub node: Arc<Node>,
    pub source: Db,
    pub reports: crate::reports::Reports,
}

impl std::ops::Deref for Site {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.node
    }
}

/// A registry handler for `method`: each call gets the node it came through, `source` and
/// `reports`.
fn handler<F, Fut>(source: &Db, reports: &crate::reports::Reports, method: F) -> Handler
where
    F: Fn(Site, CallContext, Vec<Value>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Value> + Send + 'static,
{
    let (source, reports) = (source.clone(), reports.clone());
    Arc::new(move |node, ctx, params| -> MethodFuture {
        let site = Site {
            node,
            source: source.clone(),
            reports: reports.clone(),
        };
        let answer = method(site, ctx, params);
        Box::pin(async move { Ok(answer.await) })
    })
}

/// The service as the registry lists it; its methods read `source` and `reports`.
pub fn use_stats_service(source: Db, reports: crate::reports::Reports) -> Service {
    let p = |name, kind, description| Param {
        name,
        kind,
        description,
    };
    Service {
        name: SERVICE,
        apiversion: 1,
        methods: vec![
            Method {
                path: GET_STATS,
                help: "Time a user spent on this site (or on whereroot), in minutes: site total, per course (scope 2), per activity (scope 3).",
                params: vec![
                    p(
                        "callinguser",
                        "array",
                        "username, remoteuserhostroot, remotehostroot of the person asking",
                    ),
                    p(
                        "targetuser",
                        "string",
                        "username of the user whose time is wanted",
                    ),
                    p(
                        "whereroot",
                        "string",
                        "host holding the logs; empty for this host",
                    ),
                    p(
                        "statsscope",
                        "int",
                        "1 site, 2 courses, 3 courses and activities",
                    ),
                    p(
                        "timefrom",
                        "int",
                        "start of the window (unix time); the window ends now",
                    ),
                    p(
                        "json_response",
                        "bool",
                        "true (default): answer as JSON text",
                    ),
                ],
                returns: (
                    "string",
                    "JSON {status, errors, message}; message is the USE_STATS XML",
                ),
                handler: handler(&source, &reports, get_stats),
            },
            Method {
                path: GET_SCORES,
                help: "A user's course total grade in one course.",
                params: vec![
                    p(
                        "callinguser",
                        "array",
                        "username, remoteuserhostroot, remotehostroot of the person asking",
                    ),
                    p(
                        "targetuser",
                        "string",
                        "username of the user whose grade is wanted",
                    ),
                    p(
                        "whereroot",
                        "string",
                        "host holding the grades; empty for this host",
                    ),
                    p("scorescope", "string", "notes/global (course total)"),
                    p("courseidfield", "string", "id, shortname or idnumber"),
                    p("courseidentifier", "string", "value of that field"),
                    p(
                        "json_response",
                        "bool",
                        "true (default): answer as JSON text",
                    ),
                ],
                returns: (
                    "string",
                    "JSON {status, errors, message}; message is the USER_SCORES XML",
                ),
                handler: handler(&source, &reports, get_scores),
            },
        ],
    }
}
