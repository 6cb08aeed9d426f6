//! What a run measured: latencies, errors, and the backend's CPU time from `/proc`.

use std::fmt;
use std::time::Duration;

/// Latencies and errors of a run's check-ins.
#[derive(Debug, Default)]
pub struct Summary {
    pub mode: &'static str,
    pub devices: usize,
    pub elapsed: Duration,
    latencies_us: Vec<u64>,
    pub errors: u64,
    pub first_error: String,
    /// Failed attempts that were retried (storm mode), and the first one's error.
    pub retries: u64,
    first_retried: String,
    /// Backend CPU time over the measured part.
    pub backend_cpu: Option<Duration>,
}

impl Summary {
    pub fn record(&mut self, latency: Duration) {
        self.latencies_us.push(latency.as_micros() as u64);
    }

    pub fn error(&mut self, e: String) {
        if self.errors == 0 {
            self.first_error = e;
        }
        self.errors += 1;
    }

    pub fn retry(&mut self, e: String) {
        if self.retries == 0 {
            self.first_retried = e;
        }
        self.retries += 1;
    }

    pub fn merge(&mut self, other: Summary) {
        self.latencies_us.extend(other.latencies_us);
        if self.retries == 0 && other.retries > 0 {
            self.first_retried = other.first_retried;
        }
        self.retries += other.retries;
        if self.errors == 0 && other.errors > 0 {
            self.first_error = other.first_error;
        }
        self.errors += other.errors;
    }

    fn percentile(sorted: &[u64], p: f64) -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let i = ((sorted.len() - 1) as f64 * p).round() as usize;
        sorted[i] as f64 / 1000.0
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let ok = sorted.len() as f64;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(f, "mode:        {} ({} devices)", self.mode, self.devices)?;
        writeln!(
            f,
            "check-ins:   {} in {secs:.1} s = {:.0}/s",
            sorted.len(),
            ok / secs
        )?;
        writeln!(
            f,
            "errors:      {}{}",
            self.errors,
            match self.errors {
                0 => String::new(),
                _ => format!(" (first: {})", self.first_error),
            }
        )?;
        if self.retries > 0 {
            writeln!(
                f,
                "retried:     {} failed attempts (first: {})",
                self.retries, self.first_retried
            )?;
        }
        writeln!(
            f,
            "latency ms:  p50 {:.2}  p99 {:.2}  max {:.2}",
            Self::percentile(&sorted, 0.50),
            Self::percentile(&sorted, 0.99),
            Self::percentile(&sorted, 1.0)
        )?;
        if let Some(cpu) = self.backend_cpu {
            let per = cpu.as_secs_f64() * 1e6 / ok.max(1.0);
            writeln!(
                f,
                "backend CPU: {:.2} s = {per:.0} µs per check-in ({:.0} % of one core)",
                cpu.as_secs_f64(),
                cpu.as_secs_f64() / secs * 100.0
            )?;
        }
        Ok(())
    }
}

/// The backend's user+system CPU time when a measurement started.
pub struct BackendCpu {
    pid: u32,
    at_start: Duration,
}

impl BackendCpu {
    pub fn start(pid: u32) -> Result<Self, String> {
        Ok(Self {
            pid,
            at_start: cpu_time(pid)?,
        })
    }

    pub fn since(self) -> Result<Duration, String> {
        Ok(cpu_time(self.pid)?.saturating_sub(self.at_start))
    }
}

/// utime + stime of `pid` (all its threads), from `/proc/PID/stat`.
fn cpu_time(pid: u32) -> Result<Duration, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("backend pid {pid}: {e}"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("unreadable /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| "unreadable /proc stat".to_string())
    };
    // utime and stime are fields 14 and 15 of stat(5): 11 and 12 after the name and state.
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(total as f64 / clock_ticks()))
}

/// Ticks per second of `/proc` CPU times.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}
