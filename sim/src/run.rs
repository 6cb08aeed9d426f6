//! Driving check-ins: a warm-up pass that gives every device its bundle hash (and, when
//! resuming, its session ticket), then check-ins for a while, as fast as possible or at a
//! set rate, each on a new connection.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apiary_proto::device_api::{CheckinRequest, CheckinResponse, Level, Report};
use apiary_proto::metrics::{MetricsUpload, Sample};
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
    /// Metric samples each check-in carries, of a typical device's 16 series (a 5-minute
    /// check-in of an agent sampling every minute carries 5)
    #[arg(long, default_value_t = 0)]
    metrics: usize,
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
    /// Sequence number of the next metric sample.
    next_sample: AtomicU64,
    /// Whether the backend has this device's series names.
    names_known: AtomicBool,
    /// A day before the run started: the time of sample 0.
    epoch: u64,
}

/// The series a simulated device samples: a root and a data file system, one interface,
/// one temperature sensor.
const SERIES: [&str; 16] = [
    "cpu.user",
    "cpu.system",
    "cpu.iowait",
    "memory.used",
    "memory.available",
    "swap.used",
    "load.1",
    "load.5",
    "load.15",
    "fs.used:/",
    "fs.free:/",
    "fs.used:/data",
    "fs.free:/data",
    "net.rx:eth0",
    "net.tx:eth0",
    "temp:cpu",
];

/// Runs the warm-up and the measured check-ins; returns the printed summary.
pub fn run(target: &Target, fleet: Vec<SimDevice>, opts: &RunOptions) -> Result<Summary, String> {
    let fleet = &fleet[..opts.limit.unwrap_or(fleet.len()).min(fleet.len())];
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .saturating_sub(86_400);
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
                next_sample: AtomicU64::new(1),
                names_known: AtomicBool::new(false),
                epoch,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    eprintln!(
        "apiary-sim: warm-up, one check-in per device ({})",
        live.len()
    );
    let warm = drive(
        target,
        &live,
        opts,
        Duration::MAX,
        Some(live.len()),
        Load::default(),
    )?;
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
            Load::of(opts),
        )?
    } else {
        eprintln!("apiary-sim: measuring for {} s", opts.seconds);
        let length = Duration::from_secs(opts.seconds);
        drive(target, &live, opts, length, None, Load::of(opts))?
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

/// What each check-in carries besides the bundle hash.
#[derive(Clone, Copy, Default)]
struct Load {
    reports: usize,
    samples: usize,
}

impl Load {
    fn of(opts: &RunOptions) -> Self {
        Load {
            reports: opts.reports,
            samples: opts.metrics,
        }
    }
}

/// Check-ins by `opts.threads` workers until `length` has passed or `count` were made.
fn drive(
    target: &Target,
    live: &[Live],
    opts: &RunOptions,
    length: Duration,
    count: Option<usize>,
    load: Load,
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
                        match checkin(target, device, load) {
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

/// One check-in: the bundle hash in force, `load`'s new reports and samples; the answer's
/// bundle (if any) becomes the device's, and its acknowledgements are followed.
fn checkin(target: &Target, device: &Live, load: Load) -> Result<(), String> {
    let hash = device.bundle_hash.lock().expect("not poisoned").clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let reports: Vec<Report> = (0..load.reports)
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
        metrics: (load.samples > 0).then(|| samples(device, load.samples)),
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
    if let Some(acked) = answer.metrics_ack {
        device.names_known.store(true, Ordering::Relaxed);
        device.next_sample.fetch_max(acked + 1, Ordering::Relaxed);
    }
    if answer.want_metric_names {
        device.names_known.store(false, Ordering::Relaxed);
    }
    Ok(())
}

/// `count` samples a minute apart, with values that vary as a device's do. Sample `seq`
/// is timed `seq` minutes after the run's start less a day, so every sample of a device
/// has its own time however fast the run goes (the backend ignores a second sample at the
/// same time).
fn samples(device: &Live, count: usize) -> MetricsUpload {
    let seq = device.next_sample.load(Ordering::Relaxed);
    let samples = (0..count as u64)
        .map(|i| {
            let n = seq + i;
            let wave = ((n % 60) as f64 / 60.0 * std::f64::consts::TAU).sin();
            Sample {
                time: device.epoch + n * 60,
                values: SERIES
                    .iter()
                    .enumerate()
                    .map(|(k, name)| {
                        let base = match name.split(':').next() {
                            Some("memory.available" | "fs.free") => 1.5e9,
                            Some("net.rx" | "net.tx") => 20_000.0,
                            Some("temp") => 48.0,
                            _ => 20.0,
                        };
                        Some(base * (1.0 + 0.2 * wave) + k as f64)
                    })
                    .collect(),
            }
        })
        .collect();
    MetricsUpload {
        names: (!device.names_known.load(Ordering::Relaxed))
            .then(|| SERIES.iter().map(|s| s.to_string()).collect()),
        seq,
        samples,
    }
}
