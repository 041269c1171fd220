//! The `usestats` command line. Every command takes the global `--config FILE` (default
//! `./usestats.toml`); listings print aligned tables, or JSON with `--json`.
//!
//! The doc comments of the argument structs are clap's help text, plain text on a terminal,
//! so their URLs stay bare.
#![allow(rustdoc::bare_urls)]

pub mod bench;
mod cmd;
pub mod output;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The longest per-peer timeout `peer set` takes: a call that has not answered in ten
/// minutes will not, and larger values only hold connections open.
pub const MAX_TIMEOUT_MS: i64 = 600_000;

#[derive(Parser, Debug)]
#[command(
    name = "usestats",
    version = crate::VERSION,
    about = "A Moodle MNET peer that serves use_stats: time spent per learner, course and activity"
)]
pub struct Cli {
    /// Configuration file.
    /// The configuration file (`usestats init` writes one).
    #[arg(
        long,
        global = true,
        default_value = "usestats.toml",
        env = "USESTATS_CONFIG"
    )]
    pub config: PathBuf,
    /// Machine-readable output.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a configuration file and generate our key pair.
    Init(InitArgs),
    /// Build the demo site in the embedded database and print a report (creates a config
    /// for http://127.0.0.1:8080 when there is none).
    Demo(DemoArgs),
    /// Run the MNET peer and the web services (and the console, on a listener of its own).
    Serve {
        /// Address to listen on (overrides server.listen).
        #[arg(long)]
        listen: Option<String>,
        /// Address of the console's own listener (overrides console.listen).
        #[arg(long)]
        console_listen: Option<String>,
    },
    /// Our key pair.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// MNET peers.
    Peer {
        #[command(subcommand)]
        action: PeerAction,
    },
    /// Call a method on a peer and print the decoded result as JSON.
    Call {
        /// The peer's wwwroot (or its name, as `peer list` shows it).
        peer: String,
        /// An XML-RPC method name, e.g. `system/listMethods` or
        /// `blocks/use_stats/rpclib.php/use_stats_rpc_get_stats`.
        method: String,
        /// Parameters as a JSON array (strings, numbers, objects become XML-RPC values).
        params: Option<String>,
    },
    /// Who may see what: (home wwwroot, username or '*') → site and/or course detail.
    Grant {
        #[command(subcommand)]
        action: GrantAction,
    },
    /// A user's time on this site, from the source database.
    Stats(StatsArgs),
    /// Find users of the source site by part of their name, username, email or idnumber.
    Users(UsersArgs),
    /// The course index: short name, full name, learners enrolled; filtered and paged.
    Courses(CoursesArgs),
    /// A user's time across peers, asked concurrently (fan-out).
    Collect(CollectArgs),
    /// Web-service tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Recorded MNET and web-service calls.
    Audit {
        /// Only the calls of this peer (its wwwroot).
        #[arg(long)]
        peer: Option<String>,
        /// Unix time or date (UTC).
        #[arg(long)]
        since: Option<String>,
        /// At most this many rows (1 to 100000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        limit: i64,
        /// The requests refused before authentication (counted per minute, address and
        /// reason, with a few samples) instead of the calls.
        #[arg(long)]
        refused: bool,
    },
    /// Check configuration, keys, crypto, databases, clock and peers.
    Doctor,
    /// Bring the compiled stats up to the newest log row (`serve` does it in the background).
    Compile(CompileArgs),
    /// A course's report: every enrolled learner's time in it (most time first).
    Report(ReportArgs),
    /// The console's accounts (pages for people under /console/).
    Console {
        #[command(subcommand)]
        action: ConsoleAction,
    },
    /// Load test: concurrent signed+encrypted get_stats calls against a running server.
    Bench(BenchArgs),
    /// Ask the running server for /healthz (on the configured listen address); exit 0 when it
    /// answers 200. For container and load-balancer health checks.
    Healthcheck {
        /// The URL to ask instead, e.g. http://127.0.0.1:8080/healthz.
        #[arg(long)]
        url: Option<String>,
        /// Give up after this many seconds, 1 to 300.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
        timeout_secs: u64,
    },
}

impl Command {
    /// The command's name as typed, for the database to show (`application_name`).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Init(_) => "init",
            Command::Demo(_) => "demo",
            Command::Serve { .. } => "serve",
            Command::Keys { .. } => "keys",
            Command::Peer { .. } => "peer",
            Command::Call { .. } => "call",
            Command::Grant { .. } => "grant",
            Command::Stats(_) => "stats",
            Command::Users(_) => "users",
            Command::Courses(_) => "courses",
            Command::Collect(_) => "collect",
            Command::Token { .. } => "token",
            Command::Audit { .. } => "audit",
            Command::Doctor => "doctor",
            Command::Compile(_) => "compile",
            Command::Report(_) => "report",
            Command::Console { .. } => "console",
            Command::Bench(_) => "bench",
            Command::Healthcheck { .. } => "healthcheck",
        }
    }
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Our wwwroot, as peers will register it (scheme, host, optional path, no trailing slash).
    #[arg(long)]
    pub wwwroot: String,
    /// The daemon's listener, `host:port` (default 127.0.0.1:8080).
    #[arg(long)]
    pub listen: Option<String>,
    /// The console's own listener (default 127.0.0.1:8081).
    #[arg(long)]
    pub console_listen: Option<String>,
    /// Site name (the `<title>` peers read; the organisation of our certificate).
    #[arg(long)]
    pub name: Option<String>,
    /// Overwrite an existing configuration file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The same seed gives the same site, row for row.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Local accounts: an admin, teachers and learners (default 60).
    #[arg(long)]
    pub users: Option<u32>,
    /// Courses besides the front page (default 8).
    #[arg(long)]
    pub courses: Option<u32>,
    /// Log rows of the local site's users (default 200000); each remote host's learners
    /// log on top, so adding a remote host leaves the local site's rows as they were.
    #[arg(long)]
    pub log_rows: Option<u64>,
    /// A remote MNET host whose users appear as remote users (repeatable; default
    /// https://moodle.example.org). Give your Moodle's wwwroot so its admin can be granted.
    #[arg(long = "remote-host")]
    pub remote_hosts: Vec<String>,
    /// Do not print the sample report at the end.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum KeysAction {
    /// Generate our key pair (refuses to replace one unless --force, which rotates).
    Generate {
        /// Replace the current key pair: it is archived, as `keys rotate` does.
        #[arg(long)]
        force: bool,
    },
    /// Show our certificate and the archived keys.
    Show {
        /// Print the certificate PEM.
        #[arg(long)]
        pem: bool,
    },
    /// Make a new key pair current; the old one is archived (peers get 7025 and follow).
    Rotate,
    /// With a PostgreSQL state: seal every stored private key under the current
    /// key-encryption key (after rolling out a new one with the old in `old_kek_files`).
    Rewrap,
    /// Write a new key-encryption key (64 hex characters, mode 0600) to PATH; refuses to
    /// overwrite a file.
    KekGenerate {
        /// Where to write it; the file must not exist.
        path: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum PeerAction {
    /// Register a peer: keyswap, show its certificate, confirm.
    Add(PeerAddArgs),
    /// Registered peers with their health.
    List {
        /// Include deleted peers.
        #[arg(long)]
        all: bool,
    },
    /// One peer: its certificate, services, settings and last contact.
    Show {
        /// The peer's wwwroot or name.
        peer: String,
    },
    /// Delete a peer (kept for history; it can no longer call us).
    Remove {
        /// The peer's wwwroot or name.
        peer: String,
    },
    /// Let a peer (or all hosts) call a service of ours.
    Publish(ServiceArgs),
    /// Call a service on a peer (or all hosts).
    Subscribe(ServiceArgs),
    /// Per-peer settings.
    Set {
        /// The peer's wwwroot or name.
        peer: String,
        /// 1 ms to 10 minutes.
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=MAX_TIMEOUT_MS))]
        connect_timeout_ms: Option<i64>,
        /// 1 ms to 10 minutes.
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=MAX_TIMEOUT_MS))]
        timeout_ms: Option<i64>,
        /// 0 none, 1 host name, 2 host name and chain.
        #[arg(long, value_parser = SslVerification::parse)]
        ssl_verification: Option<SslVerification>,
    },
    /// Keyswap, a system call and the clock drift, for one peer or all.
    Check {
        /// The peer's wwwroot or name (default: every peer).
        peer: Option<String>,
    },
}

use crate::store::state::{Application, SslVerification};

#[derive(Args, Debug)]
pub struct PeerAddArgs {
    /// The peer's wwwroot, e.g. https://moodle.example.org.
    pub url: String,
    /// moodle or mahara.
    #[arg(long, default_value = "moodle", value_parser = Application::parse)]
    pub application: Application,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Display name (default: the peer's home page title).
    #[arg(long)]
    pub name: Option<String>,
    /// TLS verification for calls to it: 0 none, 1 host name, 2 host name and chain.
    #[arg(long, default_value = "2", value_parser = SslVerification::parse)]
    pub ssl_verification: SslVerification,
    /// Register the peer even though its certificate has expired (refused otherwise).
    #[arg(long)]
    pub allow_expired: bool,
}

#[derive(Args, Debug)]
pub struct ServiceArgs {
    /// The peer's wwwroot (omit with --all-hosts).
    pub peer: Option<String>,
    /// The service, e.g. use_stats.
    pub service: Option<String>,
    /// Apply to the All Hosts row instead of one peer.
    #[arg(long)]
    pub all_hosts: bool,
    /// Turn it off instead of on.
    #[arg(long)]
    pub off: bool,
}

#[derive(Subcommand, Debug)]
pub enum GrantAction {
    Add {
        /// The person's home host (their Moodle's wwwroot).
        wwwroot: String,
        /// Username on that host, or '*' for everybody from it.
        username: String,
        /// May see site totals (get_stats scope 1).
        #[arg(long)]
        site: bool,
        /// May see course and activity detail (scopes 2 and 3, grades).
        #[arg(long)]
        course: bool,
        /// A registered peer that may relay this person's calls besides their home host
        /// (repeatable; '*' = any peer). Re-adding a grant replaces its list.
        #[arg(long = "via", value_name = "PEER")]
        via: Vec<String>,
    },
    /// Every grant, with its tokens and relays.
    List,
    /// Remove a grant and revoke its tokens.
    Remove {
        /// The person's home wwwroot.
        wwwroot: String,
        /// Their username there, or '*'.
        username: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum StatsFormat {
    Table,
    Json,
    Xml,
}

/// `--estimator`: which rule's numbers (docs/engine.md §8).
#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum EstimatorArg {
    /// use_stats.main, today's numbers.
    #[default]
    #[value(name = "use_stats")]
    UseStats,
    /// block_dedication 4.x's rule, computed live.
    #[value(name = "dedication")]
    Dedication,
    /// block_dedication 3.x's rule.
    #[value(name = "dedication.legacy")]
    DedicationLegacy,
    /// The three side by side.
    #[value(name = "all")]
    All,
}

impl EstimatorArg {
    pub fn names(self) -> Vec<crate::estimators::EstimatorName> {
        use crate::estimators::EstimatorName;
        use crate::stats::dedication::Variant;
        match self {
            EstimatorArg::UseStats => vec![EstimatorName::UseStats],
            EstimatorArg::Dedication => vec![EstimatorName::Dedication(Variant::Live)],
            EstimatorArg::DedicationLegacy => vec![EstimatorName::Dedication(Variant::Legacy)],
            EstimatorArg::All => EstimatorName::ALL.to_vec(),
        }
    }
}

/// The estimator options of `stats` and `report`.
#[derive(Args, Debug, Clone, Default)]
pub struct EstimatorOptions {
    /// Which estimator: use_stats (default), dedication, dedication.legacy, or all three.
    #[arg(long, value_enum, default_value_t = EstimatorArg::UseStats)]
    pub estimator: EstimatorArg,
    /// The dedication estimators' session limit in seconds, instead of block_dedication's
    /// setting (dedication) or its report form's 3600 (dedication.legacy).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(i64).range(1..))]
    pub session_limit: Option<i64>,
    /// dedication's ignore limit in seconds, instead of block_dedication's setting.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(i64).range(0..))]
    pub ignore_sessions_limit: Option<i64>,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// The learner's username on this site (see `usestats users --search`).
    pub username: String,
    /// Window start: unix time, date (UTC) or RFC 3339 instant such as 2026-03-01T08:15:00Z.
    /// Default: the beginning of the log (dedication: the course's start date, as the plugin).
    #[arg(long)]
    pub from: Option<String>,
    /// Window end: a date (UTC) is inclusive, through its last second (--to 2026-06-30 ends
    /// at 2026-06-30 23:59:59Z); a unix time or an RFC 3339 instant is exact. Default: now.
    #[arg(long)]
    pub to: Option<String>,
    /// The last N days, today (UTC) included, instead of --from and --to: 7d, 30d, 90d…
    #[arg(long, value_name = "DAYS", conflicts_with_all = ["from", "to"])]
    pub last: Option<String>,
    /// Only this course (id or shortname; `id:N` or `shortname:S` when a shortname is a
    /// number): its row (zero when it has no time) and the
    /// sessions that touched it, as the web services scope it. The XML format ignores it.
    #[arg(long)]
    pub course: Option<String>,
    /// How to print the answer.
    #[arg(long, value_enum, default_value_t = StatsFormat::Table)]
    pub format: StatsFormat,
    /// One row per session of use_stats in the window instead of the totals: start, end,
    /// duration and the courses it touched (table or json).
    #[arg(long)]
    pub sessions: bool,
    #[command(flatten)]
    pub estimators: EstimatorOptions,
}

#[derive(Subcommand, Debug)]
pub enum ConsoleAction {
    /// Console accounts.
    User {
        #[command(subcommand)]
        action: ConsoleUserAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConsoleUserAction {
    /// Add an account, or set a new password for one (which ends its sessions). The password
    /// is asked for on the terminal, or read as one line from standard input.
    Add {
        /// The account's name, as typed at login.
        name: String,
    },
    /// List the accounts.
    List,
    /// Remove an account and end its sessions.
    Remove {
        /// The account's name.
        name: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    /// Aligned columns for a terminal.
    Table,
    /// RFC 4180, to standard output unless --output is given.
    Csv,
    Json,
    /// An Excel workbook, always to a file (--output, or a name made of the course and the
    /// window).
    Xlsx,
    /// An OpenDocument spreadsheet, always to a file, as xlsx.
    Ods,
}

#[derive(Args, Debug)]
pub struct UsersArgs {
    /// What to look for: an id, a username, an email address or an idnumber (exact); when
    /// nobody has it, part of a full name (ignoring case).
    #[arg(long)]
    pub search: String,
    /// At most this many users (1 to 500).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=500))]
    pub limit: u16,
}

#[derive(Args, Debug)]
pub struct CoursesArgs {
    /// Only courses whose short name, full name or idnumber contains this (ignoring case).
    #[arg(long)]
    pub search: Option<String>,
    /// The order of the list.
    #[arg(long, value_enum, default_value_t = CourseSort::Shortname)]
    pub sort: CourseSort,
    /// Which page (from 1).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub page: u32,
    /// Courses per page (1 to 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub per_page: u16,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CourseSort {
    /// By short name.
    Shortname,
    /// By full name.
    Fullname,
    /// Most learners first.
    Learners,
    /// By course id.
    Id,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The course: id or shortname (`id:N` or `shortname:S` when a shortname is a number).
    #[arg(long)]
    pub course: String,
    /// Only the learners in this group of the course: its id or its name (`id:N` or `name:S`
    /// when a name is a number).
    #[arg(long)]
    pub group: Option<String>,
    /// Window start: unix time, date (UTC) or RFC 3339 instant such as 2026-03-01T08:15:00Z.
    /// Default: the beginning of the log (dedication: the course's start date, as the plugin).
    #[arg(long)]
    pub from: Option<String>,
    /// Window end: a date (UTC) is inclusive, through its last second (--to 2026-06-30 ends
    /// at 2026-06-30 23:59:59Z); a unix time or an RFC 3339 instant is exact. Default: now.
    #[arg(long)]
    pub to: Option<String>,
    /// The last N days, today (UTC) included, instead of --from and --to: 7d, 30d, 90d…
    #[arg(long, value_name = "DAYS", conflicts_with_all = ["from", "to"])]
    pub last: Option<String>,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Write the csv, xlsx or ods export to this file (replaced if it exists); `-` is standard
    /// output, refused for xlsx and ods on a terminal. Without it, xlsx and ods go to
    /// `course-<shortname>-<first day>_<last day>.<ext>` in the current directory.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub estimators: EstimatorOptions,
}

#[derive(Args, Debug)]
pub struct CompileArgs {
    /// Recompile this user (username, as `stats` takes it) from their first row.
    #[arg(long)]
    pub user: Option<String>,
    /// Forget everything compiled and start over.
    #[arg(long)]
    pub full: bool,
    /// Then check this many users, picked at random: the compiled answer over their whole log
    /// must equal a full scan's, field for field. Exits with an error on a difference.
    #[arg(long, value_name = "N")]
    pub verify: Option<usize>,
    /// With a shared PostgreSQL state: wait at most this long for an instance that is
    /// compiling (default `[database] lock_wait_secs`).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub wait: Option<u64>,
}

#[derive(Args, Debug)]
pub struct CollectArgs {
    /// Username on the hosts asked (as the calling person's grants allow).
    pub username: String,
    /// `all` (every peer we subscribe to use_stats on) or a comma-separated list of wwwroots.
    #[arg(long, default_value = "all")]
    pub peers: String,
    /// The calling person, as `username@home-wwwroot` (default: admin@our wwwroot).
    #[arg(long = "as")]
    pub as_user: Option<String>,
    /// 1 site, 2 courses, 3 activities.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i64).range(1..=3))]
    pub scope: i64,
    /// Window start: unix time, date (UTC) or RFC 3339 instant.
    #[arg(long)]
    pub from: Option<String>,
    /// Also include this host's own numbers.
    #[arg(long)]
    pub include_local: bool,
    /// Only use_stats: MNET get_stats answers nothing else (the answer names it).
    #[arg(long, value_enum, default_value_t = EstimatorArg::UseStats)]
    pub estimator: EstimatorArg,
}

#[derive(Subcommand, Debug)]
pub enum TokenAction {
    /// Create a token bound to a grant; the token is printed once.
    Create {
        /// The grant's home wwwroot (`grant list`).
        wwwroot: String,
        /// The grant's username, or '*'.
        username: String,
        /// A note for people: who holds the token, what for.
        #[arg(long, default_value = "")]
        label: String,
        /// Expiry: unix time or date (UTC).
        #[arg(long)]
        expires: Option<String>,
        /// Allowed client addresses, comma-separated CIDR ranges (default: any).
        #[arg(long, default_value = "")]
        allowed_ips: String,
    },
    /// Every token: its prefix, grant, label, expiry and last use (never the token).
    List,
    /// Revoke by id or by the prefix shown in `token list`.
    Revoke {
        /// Its id or the prefix `token list` shows.
        token: String,
    },
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The peer to call (its wwwroot, registered here, publishing use_stats to us).
    pub peer: String,
    /// Target username.
    pub username: String,
    /// Concurrent clients, 1 to 1024.
    #[arg(long, default_value_t = 16, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub clients: usize,
    /// 1 to 3600.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
    /// The calling person, as `username@home-wwwroot` (default: admin@our wwwroot).
    #[arg(long = "as")]
    pub as_user: Option<String>,
    /// 1 site, 2 courses, 3 activities.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i64).range(1..=3))]
    pub scope: i64,
}

/// `--as username@home-wwwroot`: the last `@` separates them, since Moodle usernames may
/// be e-mail addresses; the home must be a wwwroot we could compare with a peer's.
pub fn parse_as_user(text: &str) -> anyhow::Result<(String, String)> {
    let expected = || {
        anyhow::anyhow!(
            "--as {}: expected username@home-wwwroot",
            crate::text::echo::echo(text)
        )
    };
    let (name, home) = text.rsplit_once('@').ok_or_else(expected)?;
    if name.trim().is_empty() || home.is_empty() {
        return Err(expected());
    }
    let home = home.trim_end_matches('/');
    if let Some(problem) = crate::wwwroot::problem(home) {
        anyhow::bail!("--as {}: {home}: {problem}", crate::text::echo::echo(text));
    }
    Ok((name.to_string(), home.to_string()))
}

/// Parse the command line and run it; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    cmd::run(cli)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every argument of every command says what it is for in `--help`.
    #[test]
    fn every_argument_has_a_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "usestats", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
