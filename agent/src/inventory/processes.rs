//! The `processes` kind (opt-in): every process with its user, CPU and memory share and
//! command line, as `top` shows them, from `/proc`.
//!
//! CPU is the share of one CPU over the time since the previous collection in this agent
//! process (a cycle of `start`); on the first, it is the average over the process's life.

use std::fs;

use apiary_proto::inventory::{MAX_COMMAND, ProcessInfo};

/// CPU time each process had at the previous collection.
#[derive(Default)]
pub struct CpuHistory {
    /// System uptime then, in clock ticks.
    at: u64,
    /// (pid, start time, CPU ticks) by pid: a pid reused by a new process starts afresh.
    ticks: Vec<(u32, u64, u64)>,
}

/// What `/proc/PID/stat` says of a process.
#[derive(Debug, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    /// User and system time, clock ticks.
    pub cpu_ticks: u64,
    pub start_ticks: u64,
    pub rss_pages: u64,
}

impl CpuHistory {
    /// Reads every process; `users` names uids, `redact` hides secrets in command lines.
    pub fn collect(
        &mut self,
        users: &[(u32, String)],
        redact: &dyn Fn(&str) -> String,
    ) -> Vec<ProcessInfo> {
        // SAFETY: sysconf only reads system values.
        let (hz, page_kib) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK).max(1) as u64,
                (libc::sysconf(libc::_SC_PAGESIZE).max(4096) / 1024) as u64,
            )
        };
        let uptime = crate::metrics::sample::uptime();
        let now = (uptime * hz as f64) as u64;
        let mem_kib = super::system::meminfo_kib("MemTotal").unwrap_or(0).max(1);
        let mut ticks = Vec::new();
        let mut out = Vec::new();
        for pid in pids() {
            let Some(stat) = fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| parse_stat(&s))
            else {
                continue;
            };
            let before = self
                .ticks
                .binary_search_by_key(&pid, |t| t.0)
                .ok()
                .map(|i| self.ticks[i]);
            let (since, used) = match before {
                Some((_, start, before)) if start == stat.start_ticks && self.at < now => {
                    (now - self.at, stat.cpu_ticks.saturating_sub(before))
                }
                _ => (now.saturating_sub(stat.start_ticks), stat.cpu_ticks),
            };
            // pids come sorted, so this stays sorted for the search above.
            ticks.push((pid, stat.start_ticks, stat.cpu_ticks));
            let uid = effective_uid(pid);
            let rss_kib = stat.rss_pages * page_kib;
            out.push(ProcessInfo {
                pid,
                user: uid
                    .map(|u| {
                        users
                            .iter()
                            .find(|(id, _)| *id == u)
                            .map_or_else(|| u.to_string(), |(_, name)| name.clone())
                    })
                    .unwrap_or_default(),
                cpu: round1(100.0 * used as f64 / since.max(1) as f64),
                memory: round1(100.0 * rss_kib as f64 / mem_kib as f64),
                rss_kib,
                command: redact(&command_line(pid, &stat.comm)),
            });
        }
        self.at = now;
        self.ticks = ticks;
        out
    }
}

fn round1(v: f64) -> f32 {
    ((v * 10.0).round() / 10.0) as f32
}

fn pids() -> Vec<u32> {
    let mut pids: Vec<u32> = fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    pids
}

/// `pid (comm) state ppid ...`: the name may hold spaces and parentheses, so the fields
/// are counted from the last `)`. utime and stime are fields 14 and 15, starttime 22 and
/// rss 24.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let f: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let num = |i: usize| f.get(i)?.parse::<u64>().ok();
    Some(Stat {
        comm,
        cpu_ticks: num(11)? + num(12)?,
        start_ticks: num(19)?,
        rss_pages: num(21)?,
    })
}

fn effective_uid(pid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The arguments joined by spaces, cut to [`MAX_COMMAND`] bytes; `[comm]` for a kernel
/// thread, which has none.
fn command_line(pid: u32, comm: &str) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut text: String = String::from_utf8_lossy(&raw)
        .trim_end_matches('\0')
        .chars()
        .map(|c| if c == '\0' || c.is_control() { ' ' } else { c })
        .collect();
    if text.is_empty() {
        return format!("[{comm}]");
    }
    if text.len() > MAX_COMMAND {
        let mut cut = MAX_COMMAND;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_awkward_names() {
        let line = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 98765 10000000 321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
        let s = parse_stat(line).expect("parses");
        assert_eq!(s.comm, "my (odd) name");
        assert_eq!((s.cpu_ticks, s.start_ticks, s.rss_pages), (300, 98765, 321));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_listed_and_a_busy_one_shows_its_cpu() {
        let mut history = CpuHistory::default();
        let users = Vec::new();
        let first = history.collect(&users, &|c| c.replace("apiary_agent", "REDACTED"));
        let me = std::process::id();
        let own = first.iter().find(|p| p.pid == me).expect("listed");
        assert!(own.rss_kib > 0, "{own:?}");
        assert!(own.command.contains("REDACTED"), "redacted: {own:?}");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        std::hint::black_box(x);
        let second = history.collect(&users, &|c| c.to_string());
        let own = second.iter().find(|p| p.pid == me).expect("listed");
        assert!(own.cpu > 20.0, "a busy loop over the interval: {own:?}");
    }
}
