//! The sections of `usestats.toml`, one struct each, with their defaults: read together,
//! they are the reference of every setting.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// Our MNET identity: scheme, host and optional path, no trailing slash.
    pub wwwroot: String,
    /// Shown as the `<title>` of `GET /` (Moodle names a new peer after it) and used as the
    /// organisation of our certificate.
    #[serde(default = "default_site_name")]
    pub name: String,
}

pub(super) fn default_site_name() -> String {
    "usestats".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    /// Request bodies above this size are refused before any parsing.
    pub max_body_bytes: usize,
    pub max_xml_depth: usize,
    pub max_xml_elements: usize,
    /// Optional TLS for sites whose wwwroot is https and that are not behind a proxy.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// A request that is not encrypted can only be `system/keyswap` (about 2 KB): larger
    /// ones are refused before they are parsed.
    pub max_plain_body_bytes: usize,
    /// Open connections at most (kept below the file-descriptor limit in any case); at the
    /// cap the connection idle the longest is closed to make room.
    pub max_connections: usize,
    /// A connection with no request in progress that sends nothing for this long is closed,
    /// counted from accept.
    pub idle_timeout_secs: u64,
    /// Threads for RSA, RC4 and parsing unauthenticated input (0 = one per core).
    pub cpu_threads: usize,
    /// Request bodies held in memory at once, all connections together (received or being
    /// received, until answered); beyond, HTTP 503 with Retry-After.
    pub max_receiving_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 16 * 1024 * 1024,
            max_xml_depth: 64,
            max_xml_elements: 1_000_000,
            tls_cert: None,
            tls_key: None,
            max_plain_body_bytes: 16 * 1024,
            max_connections: 1024,
            idle_timeout_secs: 15,
            cpu_threads: 0,
            max_receiving_bytes: 256 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    pub dir: String,
    /// Certificate lifetime; Moodle's default is 28 days.
    pub lifetime_days: u32,
    /// Archived private keys kept so that callers still using an old certificate get 7025.
    pub keep_archived: usize,
    /// Subject fields as Moodle fills them when no user is known.
    pub country: String,
    pub state: String,
    pub locality: String,
    pub email: String,
    /// Rotate our key automatically this many days before the certificate expires
    /// (0 = never rotate automatically).
    pub rotate_before_days: u32,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            dir: "keys".into(),
            lifetime_days: 28,
            keep_archived: 6,
            country: "NZ".into(),
            state: "Wellington".into(),
            locality: "Wellington".into(),
            email: String::new(),
            rotate_before_days: 3,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MnetConfig {
    /// Register unknown hosts that keyswap with us ("promiscuous mode" in Moodle).
    pub auto_register: bool,
    /// Reject answers whose timestamp runs this far ahead of our clock (Moodle: 15 s).
    pub drift_threshold_secs: i64,
    pub connect_timeout_secs: u64,
    /// Total time allowed for one outgoing call, as Moodle's client (60 s).
    pub request_timeout_secs: u64,
}

impl Default for MnetConfig {
    fn default() -> Self {
        MnetConfig {
            auto_register: false,
            drift_threshold_secs: 15,
            connect_timeout_secs: 10,
            request_timeout_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// `postgres://…` or a SQLite file path (relative to the config file).
    pub url: String,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            url: "usestats.sqlite3".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// Moodle database to read: `postgres://…`, `mysql://…` (MySQL or MariaDB) or a SQLite file;
    /// empty means the state database (the embedded demo data).
    pub url: String,
    pub prefix: String,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            url: String::new(),
            prefix: "mdl_".into(),
        }
    }
}

pub use crate::store::PoolRole;

/// Connection pools to the state and source databases (`[database]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Most connections `serve` opens to each database (state, and source when separate).
    /// Opened on demand, not at start.
    pub max_connections: u32,
    /// An unused connection is closed after this many seconds.
    pub idle_timeout_secs: u64,
    /// What the process is: set by the command, never read from the file.
    #[serde(skip)]
    pub role: PoolRole,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            max_connections: 4,
            idle_timeout_secs: 300,
            role: PoolRole::Command,
        }
    }
}

/// `[engine]`: the engine's settings (use-stats-spec §2.2, E12) and how answers are computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    pub threshold_minutes: i64,
    pub lastpingcredit_minutes: i64,
    pub one_session_per_course: bool,
    pub capture_modules: Vec<String>,
    pub ignore_modules: Vec<String>,
    pub enrolment_filter: bool,
    /// Answer from the compiled store (docs/engine.md, "Compiled stats"); `false` reads every
    /// answer's whole window from the log, the reference the store is checked against.
    pub compiled: bool,
    /// How often `serve` compiles the rows logged since its last pass.
    pub compile_interval_secs: u64,
    /// How an answer makes sure no compiled row was deleted: `count` (each user's rows are
    /// counted on Moodle's `(userid)` index: exact, costs a pass over that user's index
    /// entries) or `ends` (the user's lowest and highest id only: catches Moodle's log
    /// retention and whole-user deletions; a row deleted in the middle of a history is found
    /// by `usestats compile --verify`).
    pub deletion_check: DeletionCheck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeletionCheck {
    Count,
    Ends,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let settings = crate::stats::Settings::default();
        EngineConfig {
            threshold_minutes: settings.threshold_minutes,
            lastpingcredit_minutes: settings.lastpingcredit_minutes,
            one_session_per_course: settings.one_session_per_course,
            capture_modules: settings.capture_modules,
            ignore_modules: settings.ignore_modules,
            enrolment_filter: settings.enrolment_filter,
            compiled: true,
            compile_interval_secs: 30,
            deletion_check: DeletionCheck::Count,
        }
    }
}

impl EngineConfig {
    pub fn settings(&self) -> crate::stats::Settings {
        crate::stats::Settings {
            threshold_minutes: self.threshold_minutes,
            lastpingcredit_minutes: self.lastpingcredit_minutes,
            one_session_per_course: self.one_session_per_course,
            capture_modules: self.capture_modules.clone(),
            ignore_modules: self.ignore_modules.clone(),
            enrolment_filter: self.enrolment_filter,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WsConfig {
    pub enabled: bool,
    pub max_users_per_call: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            enabled: true,
            max_users_per_call: 5000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests answered at the same time; beyond, HTTP 503 with Retry-After.
    pub max_concurrent_requests: usize,
    /// Requests per minute from one client address (0 = no limit).
    pub per_ip_per_minute: u32,
    /// MNET calls per minute from one peer (0 = no limit).
    pub per_peer_per_minute: u32,
    /// A signed request executed once is refused if it comes again within this many
    /// seconds (0 = off). Far longer than the timestamp window: the timestamp is not
    /// signed, and RC4 lets anyone rewrite it in a captured request. Kept in the state
    /// database, so a restart does not forget.
    pub replay_window_secs: i64,
    /// Replay keys held in memory at most (about 80 bytes each); beyond, the oldest are
    /// looked up in the state database instead.
    pub replay_keys_in_memory: usize,
    /// Signed requests whose timestamp is further than this from our clock are refused
    /// (0 = off; Moodle itself never checks).
    pub timestamp_window_secs: i64,
    /// Time a client has to send its request headers, and to send its body.
    pub header_read_timeout_secs: u64,
    pub body_read_timeout_secs: u64,
    /// With `mnet.auto_register`: hosts registered by keyswap per minute, in all and from
    /// one client address (0 = no limit). Each registration costs an outbound GET of the
    /// claimed wwwroot, so strangers must not be able to make many.
    pub auto_register_per_minute: u32,
    pub auto_register_per_address_per_minute: u32,
    /// With `mnet.auto_register`: self-registered peers kept at most; beyond, keyswap still
    /// answers our certificate but registers nobody.
    pub auto_register_max_peers: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_concurrent_requests: 256,
            per_ip_per_minute: 6000,
            per_peer_per_minute: 6000,
            replay_window_secs: 86_400,
            replay_keys_in_memory: 100_000,
            timestamp_window_secs: 300,
            header_read_timeout_secs: 30,
            body_read_timeout_secs: 30,
            auto_register_per_minute: 6,
            auto_register_per_address_per_minute: 2,
            auto_register_max_peers: 50,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Record every MNET and web-service call in the state database.
    pub enabled: bool,
    /// Entries older than this are deleted (0 = keep forever).
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: true,
            retention_days: 90,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter such as `info` or `usestats=debug,info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}
