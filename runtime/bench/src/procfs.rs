//! What the kernel says about a process: resident memory, CPU time and allowed cores. Read from
//! `/proc/<pid>/…` so the server is measured from outside, whatever allocator it uses.

use std::time::Duration;

use crate::BenchError;

/// Linux reports `utime`/`stime` in USER_HZ ticks, which is 100 on every mainstream
/// architecture (x86, arm64); 10 ms resolution is plenty over multi-second runs.
const USER_HZ: u64 = 100;

fn read(pid: u32, file: &str) -> Result<String, BenchError> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).map_err(|e| BenchError::Proc {
        pid,
        detail: format!("{file}: {e} (has the process exited?)"),
    })
}

fn status_field(pid: u32, name: &str) -> Result<String, BenchError> {
    let status = read(pid, "status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| BenchError::Proc {
            pid,
            detail: format!("no {name} line in status"),
        })
}

/// Resident set size (`VmRSS`) in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, BenchError> {
    let value = status_field(pid, "VmRSS")?;
    value
        .trim_end_matches("kB")
        .trim()
        .parse()
        .map_err(|e| BenchError::Proc {
            pid,
            detail: format!("VmRSS {value:?} is not a number: {e}"),
        })
}

/// The cores the process may run on (`Cpus_allowed_list`, e.g. `0` or `0-1`).
pub fn allowed_cpus(pid: u32) -> Result<String, BenchError> {
    status_field(pid, "Cpus_allowed_list")
}

/// User + system CPU time of the whole process (all threads, including exited ones).
pub fn cpu_time(pid: u32) -> Result<Duration, BenchError> {
    let stat = read(pid, "stat")?;
    // The command name (field 2) may hold spaces; fields after its closing ')' are plain.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ')' come field 3 (state) onwards: utime is field 14, stime field 15.
    let tick = |i: usize| -> Result<u64, BenchError> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| BenchError::Proc {
                pid,
                detail: format!("stat field {} is missing or not a number", i + 3),
            })
    };
    let ticks = tick(11)? + tick(12)?;
    Ok(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// CPU time the whole machine spent busy (all cores, everything but idle and iowait, from
/// `/proc/stat`): compared with the processes under test it shows how much else was running.
pub fn machine_busy() -> Result<Duration, BenchError> {
    let stat = std::fs::read_to_string("/proc/stat").map_err(|e| BenchError::Proc {
        pid: 0,
        detail: format!("/proc/stat: {e}"),
    })?;
    let line = stat.lines().next().unwrap_or("");
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    if ticks.len() < 5 {
        return Err(BenchError::Proc {
            pid: 0,
            detail: format!("/proc/stat starts with {line:?}, not the cpu totals"),
        });
    }
    // user nice system idle iowait irq softirq steal …: idle and iowait are not busy.
    let busy: u64 = ticks.iter().sum::<u64>() - ticks[3] - ticks[4];
    Ok(Duration::from_millis(busy * 1000 / USER_HZ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(!allowed_cpus(pid).unwrap().is_empty());
        // Burn CPU until the counter (clock ticks, sampled) moves past zero: a fixed wall-clock
        // burn may get no tick at all on a loaded machine. A minute is a liveness bound.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while cpu_time(pid).unwrap() == Duration::ZERO {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the process's CPU time never moved past zero"
            );
            for _ in 0..1_000_000 {
                x = x.wrapping_add(std::hint::black_box(1));
            }
        }
        std::hint::black_box(x);
        assert!(machine_busy().unwrap() >= cpu_time(pid).unwrap() / 2);
    }

    #[test]
    fn missing_process_is_an_error() {
        assert!(rss_kib(u32::MAX).is_err());
    }
}
