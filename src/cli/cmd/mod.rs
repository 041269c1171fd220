//! What each command does: one file per command, one function per sub-action, and
//! `common` for what several of them use. Errors are printed as one clear line and exit
//! with code 1 (2 for usage problems, which clap reports itself).

mod audit;
mod call;
mod collect;
mod common;
mod demo;
mod doctor;
mod grant;
mod init;
mod keys;
mod peer;
mod serve;
mod stats;
mod token;

use super::{Cli, Command};
use common::open;

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
            eprintln!("error: {}", crate::text::terminal(&message));
            1
        }
    }
}

async fn dispatch(cli: Cli) -> CmdResult {
    let json_out = cli.json;
    match cli.command {
        Command::Init(args) => init::run(&cli.config, args, json_out),
        Command::Demo(args) => demo::run(&cli.config, args, json_out).await,
        Command::Serve { listen } => serve::run(&cli.config, listen).await,
        Command::Keys { action } => keys::run(&open(&cli.config)?, action, json_out).await,
        Command::Peer { action } => peer::run(&open(&cli.config)?, action, json_out).await,
        Command::Call {
            peer,
            method,
            params,
        } => call::run(&open(&cli.config)?, &peer, &method, params.as_deref()).await,
        Command::Grant { action } => grant::run(&open(&cli.config)?, action, json_out).await,
        Command::Stats(args) => stats::run(&open(&cli.config)?, args, json_out).await,
        Command::Collect(args) => collect::run(&open(&cli.config)?, args, json_out).await,
        Command::Token { action } => token::run(&open(&cli.config)?, action, json_out).await,
        Command::Audit { peer, since, limit } => {
            audit::run(&open(&cli.config)?, peer, since, limit, json_out).await
        }
        Command::Doctor => doctor::run(&cli.config, json_out).await,
        Command::Bench(args) => super::bench::run_cli(&open(&cli.config)?, args, json_out).await,
    }
}
