//! CPU-time and memory probes shared by the bench binaries. The machine is shared, so the
//! benches report CPU time (which other processes do not inflate much) next to wall time.
#![allow(dead_code)]

use std::time::Duration;

const CLOCK_PROCESS_CPUTIME_ID: nix::time::ClockId = nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID;
const CLOCK_THREAD_CPUTIME_ID: nix::time::ClockId = nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID;

fn clock(id: nix::time::ClockId) -> Duration {
    nix::time::clock_gettime(id)
        .map(|ts| Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32))
        .unwrap_or(Duration::ZERO)
}

/// CPU time of the whole process (all threads, user + system), nanosecond resolution.
pub fn process_cpu() -> Duration {
    clock(CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time of the calling thread.
pub fn thread_cpu() -> Duration {
    clock(CLOCK_THREAD_CPUTIME_ID)
}

/// utime + stime of every live thread of this process whose name starts with `prefix`,
/// from /proc (clock ticks of 10 ms, so use it over runs of seconds).
pub fn threads_cpu(prefix: &str) -> Duration {
    let mut ticks = 0u64;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    for entry in dir.flatten() {
        let path = entry.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        if let Ok(stat) = std::fs::read_to_string(path.join("stat")) {
            ticks += stat_ticks(&stat);
        }
    }
    Duration::from_millis(ticks * 10)
}

/// utime + stime (ticks) of a /proc/…/stat line; the command name may contain spaces, so
/// count fields after the closing parenthesis.
pub fn stat_ticks(stat: &str) -> u64 {
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state(3) ppid(4) … utime is field 14, stime 15 → indexes 11 and 12.
    let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    utime + stime
}

/// Peak resident set size of this process so far (VmHWM), in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
