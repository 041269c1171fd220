//! `usestats doctor`: check configuration, keys, crypto, databases, clock and peers.

use std::path::Path;

use anyhow::bail;

use super::CmdResult;
use super::common::print_json;

pub(super) async fn run(path: &Path, json_out: bool) -> CmdResult {
    let report = crate::health::doctor(path).await;
    if json_out {
        print_json(&report);
    } else {
        for check in &report {
            println!("{:<5} {:<22} {}", check.status, check.name, check.detail);
        }
    }
    if report.iter().any(|c| c.status == "FAIL") {
        bail!("some checks failed");
    }
    Ok(())
}
