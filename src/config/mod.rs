//! Configuration: one TOML file (`usestats.toml`), every setting with a documented default.
//!
//! Relative paths in the file are resolved against the directory that holds the file, so a
//! daemon started from anywhere finds its keys and database.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod sections;
mod syntax;
pub use sections::*;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: key `{key}`: {problem}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        problem: String,
    },
    #[error("cannot write config file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub site: SiteConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub keys: KeysConfig,
    #[serde(default)]
    pub mnet: MnetConfig,
    #[serde(default)]
    pub state: StateConfig,
    #[serde(default)]
    pub source: SourceConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub engine: EngineConfig,
    #[serde(default)]
    pub ws: WsConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub console: ConsoleConfig,
    /// Directory of the config file; relative paths are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    #[serde(skip)]
    pub path: PathBuf,
    /// The environment variables of [`ENV_OVERRIDES`] that replaced a value of the file.
    #[serde(skip)]
    pub from_env: Vec<&'static str>,
}

/// An environment variable that replaces one setting of the file.
pub struct EnvOverride {
    pub var: &'static str,
    /// The setting, as configuration errors name it.
    pub key: &'static str,
    /// Sets the value, or says why it cannot be one.
    set: fn(&mut Config, String) -> Result<(), &'static str>,
}

/// Environment variables that replace the file's most common settings, for a container
/// configured by its environment (README "Install"). A variable that is set wins over the
/// file, even when empty; `serve --listen` wins over both.
pub const ENV_OVERRIDES: &[EnvOverride] = &[
    EnvOverride {
        var: "USESTATS_WWWROOT",
        key: "site.wwwroot",
        set: |c, v| {
            c.site.wwwroot = v.trim_end_matches('/').to_string();
            Ok(())
        },
    },
    EnvOverride {
        var: "USESTATS_SITE_NAME",
        key: "site.name",
        set: |c, v| {
            c.site.name = v;
            Ok(())
        },
    },
    EnvOverride {
        var: "USESTATS_LISTEN",
        key: "server.listen",
        set: |c, v| {
            c.server.listen = v;
            Ok(())
        },
    },
    EnvOverride {
        var: "USESTATS_STATE_URL",
        key: "state.url",
        set: |c, v| {
            c.state.url = v;
            Ok(())
        },
    },
    EnvOverride {
        var: "USESTATS_SOURCE_URL",
        key: "source.url",
        set: |c, v| {
            c.source.url = v;
            Ok(())
        },
    },
    EnvOverride {
        var: "USESTATS_SOURCE_PREFIX",
        key: "source.prefix",
        set: |c, v| {
            c.source.prefix = crate::store::source::Prefix::parse(&v).map_err(|_| PREFIX_RULE)?;
            Ok(())
        },
    },
    EnvOverride {
        var: "USESTATS_LOG_FORMAT",
        key: "log.format",
        set: |c, v| {
            c.log.format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => return Err("must be `text` or `json`"),
            };
            Ok(())
        },
    },
];

impl Config {
    pub fn for_wwwroot(wwwroot: &str) -> Config {
        Config {
            site: SiteConfig {
                wwwroot: wwwroot.trim_end_matches('/').to_string(),
                name: default_site_name(),
            },
            server: ServerConfig::default(),
            keys: KeysConfig::default(),
            mnet: MnetConfig::default(),
            state: StateConfig::default(),
            source: SourceConfig::default(),
            database: DatabaseConfig::default(),
            engine: EngineConfig::default(),
            ws: WsConfig::default(),
            log: LogConfig::default(),
            audit: AuditConfig::default(),
            limits: LimitsConfig::default(),
            console: ConsoleConfig::default(),
            base_dir: PathBuf::from("."),
            path: PathBuf::from("usestats.toml"),
            from_env: Vec::new(),
        }
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_and_env(&text, path, |name| std::env::var(name).ok())
    }

    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        Self::from_toml_and_env(text, path, |_| None)
    }

    /// The file's settings, then those of [`ENV_OVERRIDES`] that `env` has a value for.
    pub fn from_toml_and_env(
        text: &str,
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: syntax::one_line(&e, text),
        })?;
        config.path = path.to_path_buf();
        config.base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        // E12: a missing *or empty* capture list means the default one.
        if config
            .engine
            .capture_modules
            .iter()
            .all(|m| m.trim().is_empty())
        {
            config.engine.capture_modules = EngineConfig::default().capture_modules;
        }
        // Configs written before the console had a listener of its own say `listen = ""` (then:
        // on the main listener). An upgrade must still start: they get the default listener.
        if config.console.listen.trim().is_empty() {
            config.console.listen = DEFAULT_CONSOLE_LISTEN.into();
        }
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for item in ENV_OVERRIDES {
            let Some(value) = env(item.var) else {
                continue;
            };
            self.from_env.push(item.var);
            (item.set)(self, value).map_err(|problem| self.invalid(item.key, problem))?;
        }
        Ok(())
    }

    fn invalid(&self, key: &'static str, problem: impl fmt::Display) -> ConfigError {
        // A value from the environment is not in the file the message names: say where it is.
        let from = ENV_OVERRIDES
            .iter()
            .find(|item| item.key == key && self.from_env.contains(&item.var))
            .map(|item| format!(" (set by the environment variable {})", item.var))
            .unwrap_or_default();
        ConfigError::Invalid {
            path: self.path.clone(),
            key,
            problem: format!("{problem}{from}"),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_site()?;
        self.validate_database()?;
        self.validate_server()?;
        self.validate_keys_and_mnet()?;
        self.validate_state_and_engine()?;
        self.validate_limits()?;
        self.validate_ws_console_and_log()
    }

    /// `[site]`, and the listener and body sizes of `[server]`.
    fn validate_site(&self) -> Result<(), ConfigError> {
        if self.site.wwwroot.trim().is_empty() {
            return Err(self.invalid(
                "site.wwwroot",
                "is not set: set it to the address Moodle hosts will know this peer by, such as https://stats.example.org",
            ));
        }
        if let Some(problem) = crate::wwwroot::problem(&self.site.wwwroot) {
            return Err(self.invalid("site.wwwroot", problem));
        }
        if self.site.name.trim().is_empty() {
            return Err(self.invalid("site.name", "must not be empty"));
        }
        if self.server.listen.parse::<SocketAddr>().is_err() {
            return Err(self.invalid(
                "server.listen",
                format!(
                    "`{}` is not an address:port such as 127.0.0.1:8080",
                    self.server.listen
                ),
            ));
        }
        if self.server.max_body_bytes < 4096 {
            return Err(self.invalid("server.max_body_bytes", "must be at least 4096"));
        }
        if self.server.max_plain_body_bytes < 4096 {
            return Err(self.invalid(
                "server.max_plain_body_bytes",
                "must be at least 4096 (a keyswap carries a certificate)",
            ));
        }
        Ok(())
    }

    /// `[database]`: pools and waits.
    fn validate_database(&self) -> Result<(), ConfigError> {
        if !(1..=256).contains(&self.database.max_connections) {
            return Err(self.invalid("database.max_connections", "must be between 1 and 256"));
        }
        if !(1..=3600).contains(&self.database.lock_wait_secs) {
            return Err(self.invalid("database.lock_wait_secs", "must be between 1 and 3600"));
        }
        if self.database.idle_timeout_secs < 1 {
            return Err(self.invalid("database.idle_timeout_secs", "must be at least 1"));
        }
        Ok(())
    }

    /// `[server]`: connections, timeouts, XML limits, TLS.
    fn validate_server(&self) -> Result<(), ConfigError> {
        if self.server.max_connections < 8 {
            return Err(self.invalid("server.max_connections", "must be at least 8"));
        }
        if self.server.max_receiving_bytes < self.server.max_body_bytes {
            return Err(self.invalid(
                "server.max_receiving_bytes",
                "must be at least server.max_body_bytes",
            ));
        }
        if self.server.idle_timeout_secs == 0 {
            return Err(self.invalid("server.idle_timeout_secs", "must be at least 1 second"));
        }
        if self.server.max_xml_depth < 8 {
            return Err(self.invalid("server.max_xml_depth", "must be at least 8"));
        }
        if self.server.max_xml_elements < 64 {
            return Err(self.invalid("server.max_xml_elements", "must be at least 64"));
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return Err(self.invalid(
                "server.tls_cert",
                "tls_cert and tls_key must be given together",
            ));
        }
        Ok(())
    }

    /// `[keys]` and `[mnet]`.
    fn validate_keys_and_mnet(&self) -> Result<(), ConfigError> {
        if self.keys.dir.trim().is_empty() {
            return Err(self.invalid("keys.dir", "must not be empty"));
        }
        if !(1..=3650).contains(&self.keys.lifetime_days) {
            return Err(self.invalid("keys.lifetime_days", "must be between 1 and 3650"));
        }
        if self.keys.keep_archived < 3 {
            return Err(self.invalid(
                "keys.keep_archived",
                "must be at least 3 (Moodle keeps 3 generations)",
            ));
        }
        if self.keys.rotate_before_days >= self.keys.lifetime_days
            && self.keys.rotate_before_days != 0
        {
            return Err(self.invalid(
                "keys.rotate_before_days",
                "must be smaller than keys.lifetime_days",
            ));
        }
        if self.keys.country.chars().count() != 2 {
            return Err(self.invalid("keys.country", "must be a two-letter country code"));
        }
        if !(0..=3600).contains(&self.mnet.drift_threshold_secs) {
            return Err(self.invalid("mnet.drift_threshold_secs", "must be between 0 and 3600"));
        }
        if self.mnet.connect_timeout_secs == 0 || self.mnet.request_timeout_secs == 0 {
            return Err(self.invalid(
                "mnet.request_timeout_secs",
                "timeouts must be at least 1 second",
            ));
        }
        Ok(())
    }

    /// `[state]` and `[engine]` (the source prefix is checked as it is read).
    fn validate_state_and_engine(&self) -> Result<(), ConfigError> {
        if self.state.url.trim().is_empty() {
            return Err(self.invalid("state.url", "must not be empty"));
        }
        if crate::store::DbKind::of(&self.state.url) == crate::store::DbKind::Mysql {
            return Err(self.invalid("state.url", crate::store::MYSQL_STATE));
        }
        if self.engine.threshold_minutes <= 0 {
            return Err(self.invalid("engine.threshold_minutes", "must be positive"));
        }
        if self.engine.compile_interval_secs == 0 {
            return Err(self.invalid("engine.compile_interval_secs", "must be at least 1"));
        }
        if self.engine.lastpingcredit_minutes < 0 {
            return Err(self.invalid("engine.lastpingcredit_minutes", "must not be negative"));
        }
        Ok(())
    }

    /// `[limits]`.
    fn validate_limits(&self) -> Result<(), ConfigError> {
        if self.limits.max_concurrent_requests == 0 {
            return Err(self.invalid("limits.max_concurrent_requests", "must be at least 1"));
        }
        if self.limits.replay_window_secs < 0 || self.limits.timestamp_window_secs < 0 {
            return Err(self.invalid("limits.replay_window_secs", "windows must not be negative"));
        }
        if self.limits.replay_window_secs != 0
            && self.limits.replay_window_secs < self.limits.timestamp_window_secs
        {
            return Err(self.invalid(
                "limits.replay_window_secs",
                "must be at least limits.timestamp_window_secs (or 0 = off)",
            ));
        }
        if self.limits.replay_keys_in_memory == 0 {
            return Err(self.invalid("limits.replay_keys_in_memory", "must be at least 1"));
        }
        if self.limits.auto_register_max_peers == 0 {
            return Err(self.invalid(
                "limits.auto_register_max_peers",
                "must be at least 1 (turn mnet.auto_register off instead)",
            ));
        }
        if self.limits.header_read_timeout_secs == 0 || self.limits.body_read_timeout_secs == 0 {
            return Err(self.invalid(
                "limits.header_read_timeout_secs",
                "timeouts must be at least 1 second",
            ));
        }
        Ok(())
    }

    /// `[ws]`, `[console]` and `[log]`.
    fn validate_ws_console_and_log(&self) -> Result<(), ConfigError> {
        if self.ws.max_users_per_call == 0 {
            return Err(self.invalid("ws.max_users_per_call", "must be at least 1"));
        }
        if self.console.enabled {
            let listen = self.console.listen.trim();
            if listen.parse::<SocketAddr>().is_err() {
                return Err(self.invalid(
                    "console.listen",
                    format!(
                        "`{listen}` is not an address:port such as {DEFAULT_CONSOLE_LISTEN}: the console has a listener of its own, never `[server] listen` (set `[console] enabled = false` to run without it)"
                    ),
                ));
            }
            // Port 0 is "any free port" (tests, `serve --listen 127.0.0.1:0`): two of those differ.
            let console = listen.parse::<SocketAddr>().ok();
            if console.is_some_and(|a| a.port() != 0)
                && console == self.server.listen.parse::<SocketAddr>().ok()
            {
                return Err(self.invalid(
                    "console.listen",
                    "must differ from server.listen: the console is never served on the listener a proxy forwards",
                ));
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(self.invalid("log.level", "not a valid filter such as `info`"));
        }
        Ok(())
    }

    /// Our wwwroot exactly as peers have it on record (P28).
    pub fn wwwroot(&self) -> &str {
        &self.site.wwwroot
    }

    pub fn resolve(&self, relative: &str) -> PathBuf {
        let p = Path::new(relative);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.resolve(&self.keys.dir)
    }

    /// The key-encryption key's file (used with a PostgreSQL state).
    pub fn kek_file(&self) -> PathBuf {
        if self.keys.kek_file.trim().is_empty() {
            self.keys_dir().join("kek")
        } else {
            self.resolve(&self.keys.kek_file)
        }
    }

    pub fn old_kek_files(&self) -> Vec<PathBuf> {
        self.keys
            .old_kek_files
            .iter()
            .map(|f| self.resolve(f))
            .collect()
    }

    /// The state database URL with a relative SQLite path made absolute.
    pub fn state_url(&self) -> String {
        self.database_url(&self.state.url)
    }

    /// The source database URL; empty means the state database.
    pub fn source_url(&self) -> String {
        if self.source.url.trim().is_empty() {
            self.state_url()
        } else {
            self.database_url(&self.source.url)
        }
    }

    /// The source is a database of its own (a Moodle's), not the state database.
    pub fn source_is_separate(&self) -> bool {
        self.source_url() != self.state_url()
    }

    fn database_url(&self, url: &str) -> String {
        if crate::store::DbKind::of(url) != crate::store::DbKind::Sqlite {
            url.to_string()
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            if path == ":memory:" || path.starts_with("file:") {
                path.to_string()
            } else {
                self.resolve(path).to_string_lossy().into_owned()
            }
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// A database URL fit to print: the password of `scheme://user:password@host/…` masked.
pub fn redacted_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

/// What a table prefix must be, for the variable that sets one ([`crate::store::source::Prefix`]
/// says it for the file).
const PREFIX_RULE: &str =
    "a lower-case letter, then lower-case letters, digits and `_`, at most 20 characters";

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("/etc/usestats/usestats.toml"))
    }

    #[test]
    fn database_passwords_are_masked_for_printing() {
        assert_eq!(
            redacted_url("postgres://usestats:s3cr@t@db.example.org:5432/moodle"),
            "postgres://usestats:***@db.example.org:5432/moodle"
        );
        assert_eq!(
            redacted_url("mysql://ro:pw@127.0.0.1/moodle?ssl-mode=required"),
            "mysql://ro:***@127.0.0.1/moodle?ssl-mode=required"
        );
        assert_eq!(redacted_url("postgres://db/moodle"), "postgres://db/moodle");
        assert_eq!(
            redacted_url("postgres://ro@db/moodle"),
            "postgres://ro@db/moodle"
        );
        assert_eq!(
            redacted_url("/var/lib/usestats/a@b.sqlite3"),
            "/var/lib/usestats/a@b.sqlite3"
        );
    }

    #[test]
    fn minimal_config_takes_every_default() {
        let c = parse("[site]\nwwwroot = \"https://stats.example.org\"\n").unwrap();
        assert_eq!(c.server.max_body_bytes, 16 * 1024 * 1024);
        assert_eq!(c.keys.lifetime_days, 28);
        assert_eq!(c.keys.keep_archived, 6);
        assert_eq!(c.mnet.drift_threshold_secs, 15);
        assert_eq!(c.engine.threshold_minutes, 60);
        assert_eq!(c.engine.capture_modules, vec!["learningtimecheck"]);
        assert_eq!(c.source.prefix, "mdl_");
        assert_eq!(c.keys_dir(), PathBuf::from("/etc/usestats/keys"));
        assert_eq!(c.state_url(), "/etc/usestats/usestats.sqlite3");
        assert_eq!(c.source_url(), c.state_url());
    }

    #[test]
    fn an_older_config_with_an_empty_console_listen_still_loads() {
        let c =
            parse("[site]\nwwwroot = \"https://stats.example.org\"\n[console]\nlisten = \"\"\n")
                .unwrap();
        assert_eq!(c.console.listen, DEFAULT_CONSOLE_LISTEN);
        let err = parse(
            "[site]\nwwwroot = \"https://stats.example.org\"\n[console]\nlisten = \"nope\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("console.listen"), "{err}");
    }

    #[test]
    fn errors_name_the_key() {
        let err = parse("[site]\nwwwroot = \"https://x.org/\"\n").unwrap_err();
        assert!(err.to_string().contains("site.wwwroot"), "{err}");
        let err = parse("[site]\nwwwroot = \"https://x.org\"\n[server]\nlisten = \"nowhere\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("server.listen"), "{err}");
        let err = parse("[site]\nwwwroot = \"https://x.org\"\n[source]\nprefix = \"mdl; drop\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("invalid table prefix"), "{err}");
        let err =
            parse("[site]\nwwwroot = \"https://x.org\"\n[server]\nlisen = \"a\"\n").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let err = parse("[site]\nwwwroot = \"https://x.org\"\n[keys]\nlifetime_days = \"x\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("lifetime_days"), "{err}");
    }

    /// `doctor` reads the configuration and `stats` the tables: a prefix the first accepted
    /// and the second refused made every call fail after a clean bill of health.
    #[test]
    fn the_configuration_refuses_what_the_source_refuses() {
        let config = |prefix: &str| {
            parse(&format!(
                "[site]\nwwwroot = \"https://x.org\"\n[source]\nprefix = \"{prefix}\"\n"
            ))
        };
        for prefix in [
            "",
            "9x_",
            "_x",
            "Mdl_",
            "mdl-",
            "mdl; drop",
            "abcdefghijklmnopqrstu",
        ] {
            assert!(
                crate::store::source::Source::new(prefix).is_err(),
                "the store takes {prefix:?}"
            );
            assert!(
                config(prefix).is_err(),
                "the configuration takes {prefix:?}"
            );
            let from_env = with_env(
                "[site]\nwwwroot = \"https://x.org\"\n",
                &[("USESTATS_SOURCE_PREFIX", prefix)],
            );
            assert!(from_env.is_err(), "the environment sets {prefix:?}");
        }
        for prefix in ["mdl_", "m", "moodle2_", "t_"] {
            let c = config(prefix).unwrap();
            assert_eq!(c.source.prefix.as_str(), prefix);
            assert!(crate::store::source::Source::new(&c.source.prefix).is_ok());
        }
        assert_eq!(
            parse("[site]\nwwwroot = \"https://x.org\"\n")
                .unwrap()
                .source
                .prefix
                .as_str(),
            "mdl_",
            "Moodle's default"
        );
    }

    #[test]
    fn an_empty_capture_list_means_the_default() {
        let c =
            parse("[site]\nwwwroot = \"https://x.org\"\n[engine]\ncapture_modules = []\n").unwrap();
        assert_eq!(c.engine.capture_modules, vec!["learningtimecheck"]);
        let c =
            parse("[site]\nwwwroot = \"https://x.org\"\n[engine]\ncapture_modules = [\"scorm\"]\n")
                .unwrap();
        assert_eq!(c.engine.capture_modules, vec!["scorm"]);
    }

    fn with_env(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_toml_and_env(text, Path::new("/etc/usestats/usestats.toml"), |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn environment_variables_replace_the_common_settings() {
        let file = "[site]\nwwwroot = \"\"\n[server]\nlisten = \"127.0.0.1:8080\"\n[state]\nurl = \"state.sqlite3\"\n";
        let c = with_env(
            file,
            &[
                ("USESTATS_WWWROOT", "https://stats.example.org/"),
                ("USESTATS_SITE_NAME", "Stats"),
                ("USESTATS_LISTEN", "0.0.0.0:8080"),
                ("USESTATS_STATE_URL", "postgres://u:p@db/usestats"),
                ("USESTATS_SOURCE_URL", "mysql://ro:p@moodle-db/moodle"),
                ("USESTATS_SOURCE_PREFIX", "m_"),
                ("USESTATS_LOG_FORMAT", "json"),
            ],
        )
        .unwrap();
        assert_eq!(c.site.wwwroot, "https://stats.example.org");
        assert_eq!(c.site.name, "Stats");
        assert_eq!(c.server.listen, "0.0.0.0:8080");
        assert_eq!(c.state_url(), "postgres://u:p@db/usestats");
        assert_eq!(c.source_url(), "mysql://ro:p@moodle-db/moodle");
        assert_eq!(c.source.prefix, "m_");
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.from_env.len(), ENV_OVERRIDES.len());
        // Unset variables leave the file's values, and a relative path stays relative to it.
        let c = with_env(file, &[("USESTATS_WWWROOT", "https://x.org")]).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        assert_eq!(c.state_url(), "/etc/usestats/state.sqlite3");
        assert_eq!(c.from_env, vec!["USESTATS_WWWROOT"]);
        // Set but empty is set: the state database as the source.
        let c = with_env(
            "[site]\nwwwroot = \"https://x.org\"\n[source]\nurl = \"mysql://ro@db/m\"\n",
            &[("USESTATS_SOURCE_URL", "")],
        )
        .unwrap();
        assert!(!c.source_is_separate());
    }

    #[test]
    fn a_bad_value_from_the_environment_names_the_variable() {
        let file = "[site]\nwwwroot = \"https://x.org\"\n";
        let err = with_env(file, &[("USESTATS_LISTEN", "everywhere")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `server.listen`"), "{err}");
        assert!(
            err.contains("set by the environment variable USESTATS_LISTEN"),
            "{err}"
        );
        let err = with_env(file, &[("USESTATS_LOG_FORMAT", "xml")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be `text` or `json`"), "{err}");
        assert!(err.contains("USESTATS_LOG_FORMAT"), "{err}");
        // A bad value in the file says nothing of the environment.
        let err = parse("[site]\nwwwroot = \"https://x.org\"\n[server]\nlisten = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("environment"), "{err}");
    }

    #[test]
    fn an_empty_wwwroot_says_what_to_set() {
        let err = parse("[site]\nwwwroot = \"\"\n").unwrap_err().to_string();
        assert!(err.contains("key `site.wwwroot`: is not set"), "{err}");
        assert!(err.contains("/etc/usestats/usestats.toml"), "{err}");
        let err = with_env(
            "[site]\nwwwroot = \"https://x.org\"\n",
            &[("USESTATS_WWWROOT", "")],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("is not set"), "{err}");
        assert!(err.contains("USESTATS_WWWROOT"), "{err}");
    }

    #[test]
    fn written_config_reads_back() {
        let c = Config::for_wwwroot("http://127.0.0.1:9000");
        let again = parse(&c.to_toml()).unwrap();
        assert_eq!(again.site.wwwroot, "http://127.0.0.1:9000");
        assert_eq!(again.server.listen, c.server.listen);
    }
}
