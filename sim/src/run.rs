//! Driving check-ins: a warm-up pass that gives every device its bundle hash (and, when
//! resuming, its session ticket), then check-ins for a while, as fast as possible or at a
//! set rate, each on a new connection.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apiary_proto::device_api::{CheckinRequest, CheckinResponse, Level, Report};
use rustls::ClientConfig;

use crate::client::Target;
use crate::devices::SimDevice;
use crate::stats::{BackendCpu, Summary};

/// Options of `run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunOptions {
    /// Seconds to measure for (after the warm-up pass)
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Check-ins per second to aim for; 0: as fast as the workers go
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Check-ins in flight at once
    #[arg(long, default_value_t = 8)]
    threads: usize,
    /// No session resumption: every check-in a full handshake (a reconnect storm after
    /// a power cut, or `run-once`)
    #[arg(long)]
    full_handshake: bool,
    /// Reports each check-in carries (0: idle check-ins)
    #[arg(long, default_value_t = 0)]
    reports: usize,
    /// Use only the first N stored devices
    #[arg(long)]
    limit: Option<usize>,
    /// PID of the backend, whose CPU time per check-in is reported
    #[arg(long)]
    backend_pid: Option<u32>,
    /// A reconnect storm: after the warm-up, every device checks in once, `--threads` at
    /// a time, with full handshakes; a failed check-in is retried after 1–2 s, as an agent
    /// retries, until all are served (30 attempts at most). Prints the time until then
    #[arg(long)]
    storm: bool,
}

/// A device during a run.
struct Live {
    config: Arc<ClientConfig>,
    bundle_hash: Mutex<Option<String>>,
    queue_id: String,
    next_seq: AtomicU64,
}

/// Runs the warm-up and the measured check-ins; returns the printed summary.
pub fn run(target: &Target, fleet: Vec<SimDevice>, opts: &RunOptions) -> Result<Summary, String> {
    let fleet = &fleet[..opts.limit.unwrap_or(fleet.len()).min(fleet.len())];
    let live = fleet
        .iter()
        .map(|d| {
            let pkcs8 = apiary_proto::hex::decode(&d.key_pkcs8_hex)
                .ok_or_else(|| format!("device {}: key is not hex", d.id))?;
            Ok(Live {
                config: target.config(
                    Some((&d.cert_pem, &pkcs8)),
                    !(opts.full_handshake || opts.storm),
                )?,
                bundle_hash: Mutex::new(None),
                queue_id: apiary_proto::hex::random(8),
                next_seq: AtomicU64::new(1),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    eprintln!(
        "apiary-sim: warm-up, one check-in per device ({})",
        live.len()
    );
    let warm = drive(target, &live, opts, Duration::MAX, Some(live.len()), 0)?;
    if warm.errors > 0 {
        return Err(format!(
            "warm-up: {} check-ins failed: {}",
            warm.errors, warm.first_error
        ));
    }
    let cpu = opts.backend_pid.map(BackendCpu::start).transpose()?;
    let mut summary = if opts.storm {
        eprintln!("apiary-sim: storm, every device at once");
        drive(
            target,
            &live,
            opts,
            Duration::MAX,
            Some(live.len()),
            opts.reports,
        )?
    } else {
        eprintln!("apiary-sim: measuring for {} s", opts.seconds);
        let length = Duration::from_secs(opts.seconds);
        drive(target, &live, opts, length, None, opts.reports)?
    };
    summary.backend_cpu = cpu.map(|c| c.since()).transpose()?;
    summary.mode = match (opts.storm, opts.full_handshake) {
        (true, _) => "reconnect storm, full handshakes",
        (false, true) => "full handshake",
        (false, false) => "resumed",
    };
    summary.devices = live.len();
    Ok(summary)
}

/// Check-ins by `opts.threads` workers until `length` has passed or `count` were made.
fn drive(
    target: &Target,
    live: &[Live],
    opts: &RunOptions,
    length: Duration,
    count: Option<usize>,
    reports: usize,
) -> Result<Summary, String> {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let deadline = start.checked_add(length);
    let outcomes = Mutex::new(Summary::default());
    std::thread::scope(|s| {
        for _ in 0..opts.threads.max(1) {
            s.spawn(|| {
                let mut mine = Summary::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if count.is_some_and(|c| i >= c) {
                        break;
                    }
                    if opts.rate > 0.0 {
                        let at = start + Duration::from_secs_f64(i as f64 / opts.rate);
                        if let Some(wait) = at.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                    let device = &live[i % live.len()];
                    let (mut t0, mut attempt) = (Instant::now(), 0);
                    loop {
                        attempt += 1;
                        match checkin(target, device, reports) {
                            Ok(()) => break mine.record(t0.elapsed()),
                            Err(e) if opts.storm && attempt < STORM_ATTEMPTS => {
                                mine.retry(e);
                                std::thread::sleep(backoff(i, attempt));
                                t0 = Instant::now();
                            }
                            Err(e) => break mine.error(e),
                        }
                    }
                }
                outcomes
                    .lock()
                    .expect("no worker panics holding it")
                    .merge(mine);
            });
        }
    });
    let mut summary = outcomes.into_inner().expect("workers are done");
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// Attempts per device in a storm before it counts as an error.
const STORM_ATTEMPTS: u64 = 30;

/// 1–2 s, spread by device and attempt so that retries do not come back in step.
fn backoff(device: usize, attempt: u64) -> Duration {
    let spread = (device as u64).wrapping_mul(2_654_435_761) ^ attempt.wrapping_mul(40_503);
    Duration::from_millis(1000 + spread % 1000)
}

/// One check-in: the bundle hash in force, `reports` new reports; the answer's bundle (if
/// any) becomes the device's.
fn checkin(target: &Target, device: &Live, reports: usize) -> Result<(), String> {
    let hash = device.bundle_hash.lock().expect("not poisoned").clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let reports: Vec<Report> = (0..reports)
        .map(|_| Report {
            seq: device.next_seq.fetch_add(1, Ordering::Relaxed),
            time: now,
            level: Level::Info,
            policy: "file_distribution".into(),
            item: Some("/etc/sim.conf".into()),
            message: "/etc/sim.conf is up to date".into(),
            output: None,
            bundle_serial: None,
        })
        .collect();
    let request = CheckinRequest {
        bundle_hash: hash,
        queue_id: if reports.is_empty() {
            String::new()
        } else {
            device.queue_id.clone()
        },
        reports,
        ..CheckinRequest::default()
    };
    let answer: CheckinResponse = target.post_json(
        &device.config,
        apiary_proto::paths::CHECKIN,
        &request,
        "check-in",
    )?;
    if let Some(bundle) = answer.bundle {
        *device.bundle_hash.lock().expect("not poisoned") = Some(bundle.payload_hash());
    }
    Ok(())
}
