//! What each command does: one file per command, one function per sub-action, and
//! `common` for what several of them use. Errors are printed as one clear line, what was
//! being done first and the cause last, and exit with code 1 (2 for usage problems, which
//! clap reports itself).

mod audit;
mod call;
mod collect;
mod common;
mod compile;
mod console;
mod courses;
mod demo;
mod doctor;
mod estimate;
mod grant;
mod healthcheck;
mod init;
mod keys;
mod peer;
mod report;
mod serve;
mod sessions;
mod stats;
mod token;
mod users;

use super::{Cli, Command, KeysAction};
use common::open;

type CmdResult = anyhow::Result<()>;

pub fn run(cli: Cli) -> i32 {
    quiet_on_closed_stdout();
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
    let json_out = cli.json;
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => 0,
        Err(err) => {
            if let Some(done) = err.downcast_ref::<Reported>() {
                // The answer is on standard output already; only the outcome is left to say.
                eprintln!("error: {}", crate::text::terminal(&done.0));
                return 1;
            }
            let line = one_line(&err);
            if json_out && !common::JSON_PRINTED.load(std::sync::atomic::Ordering::Relaxed) {
                // A script that asked for JSON reads standard output as JSON, failures too
                // (once: an answer already printed is the document).
                println!("{}", serde_json::json!({ "error": line }));
            }
            // Errors can quote what a peer sent.
            eprintln!("error: {}", crate::text::terminal(&line));
            1
        }
    }
}

/// A command that printed its whole answer and still failed (every peer of `collect` did):
/// exit 1 with this line on standard error, and nothing more on standard output.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Reported(String);

/// A reader that stops early (`usestats report | head`) closes our standard output; `print!`
/// then panics with "failed printing to stdout". That is the reader's choice, not a failure of
/// ours: exit at once, quietly and successfully, as `cat` and `grep` do under a shell that
/// ignores SIGPIPE. Any other panic keeps the default report.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let text = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.starts_with("failed printing to stdout") && text.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info)
    }));
}

/// The error and its causes joined by `: `, as anyhow's `{:#}` does, except that a cause
/// its parent already quotes is not said twice: the lower layers' thiserror types both
/// write their source into their message (`database error: {0}`) and expose it as the
/// source, so `{:#}` would print it twice.
fn one_line(err: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut parent = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if parent.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
        parent = text;
    }
    out
}

async fn dispatch(cli: Cli) -> CmdResult {
    let json_out = cli.json;
    crate::store::name_process(cli.command.name());
    match cli.command {
        Command::Init(args) => init::run(&cli.config, args, json_out),
        Command::Demo(args) => demo::run(&cli.config, args, json_out).await,
        Command::Serve {
            listen,
            console_listen,
        } => serve::run(&cli.config, listen, console_listen).await,
        Command::Keys {
            action: KeysAction::KekGenerate { path },
        } => keys::kek_generate(&path, json_out),
        Command::Keys { action } => keys::run(&open(&cli.config)?, action, json_out).await,
        Command::Peer { action } => peer::run(&open(&cli.config)?, action, json_out).await,
        Command::Call {
            peer,
            method,
            params,
        } => call::run(&open(&cli.config)?, &peer, &method, params.as_deref()).await,
        Command::Grant { action } => grant::run(&open(&cli.config)?, action, json_out).await,
        Command::Stats(args) => stats::run(&open(&cli.config)?, args, json_out).await,
        Command::Users(args) => users::run(&open(&cli.config)?, args, json_out).await,
        Command::Courses(args) => courses::run(&open(&cli.config)?, args, json_out).await,
        Command::Collect(args) => collect::run(&open(&cli.config)?, args, json_out).await,
        Command::Token { action } => token::run(&open(&cli.config)?, action, json_out).await,
        Command::Audit {
            peer,
            since,
            limit,
            refused,
        } => {
            let app = open(&cli.config)?;
            if refused {
                audit::run_refused(&app, since, limit, json_out).await
            } else {
                audit::run(&app, peer, since, limit, json_out).await
            }
        }
        Command::Doctor => doctor::run(&cli.config, json_out).await,
        Command::Compile(args) => compile::run(&open(&cli.config)?, args, json_out).await,
        Command::Report(args) => report::run(&open(&cli.config)?, args, json_out).await,
        Command::Console { action } => console::run(&open(&cli.config)?, action, json_out).await,
        Command::Bench(args) => super::bench::run_cli(&open(&cli.config)?, args, json_out).await,
        Command::Healthcheck { url, timeout_secs } => {
            healthcheck::run(&cli.config, url, timeout_secs).await
        }
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::one_line;

    #[test]
    fn causes_are_said_once_in_order() {
        let io = std::io::Error::other("disk full");
        let quoted = crate::config::ConfigError::Write {
            path: "x.toml".into(),
            source: io,
        };
        let err = Err::<(), _>(quoted)
            .context("writing the configuration")
            .unwrap_err();
        assert_eq!(
            one_line(&err),
            "writing the configuration: cannot write config file x.toml: disk full"
        );
        let plain = Err::<(), _>(std::io::Error::other("refused"))
            .context("cannot listen on 127.0.0.1:1")
            .unwrap_err();
        assert_eq!(one_line(&plain), "cannot listen on 127.0.0.1:1: refused");
    }
}
