//! One agent cycle: check in, verify the bundle, converge, report, and check in again if
//! anything changed so the backend learns the outcome at once.

use std::time::Duration;

use apiary_proto::device_api::{CheckinRequest, CheckinResponse, HostFacts, Level};
use apiary_proto::paths;
use apiary_proto::policy::connectivity_watchdog::ConnectivityWatchdog;
use apiary_proto::signed::Envelope;

use crate::bundle_store::{self, InForce};
use crate::clock;
use crate::config::{Dirs, Identity};
use crate::expand::Vars;
use crate::inventory;
use crate::metrics;
use crate::network;
use crate::policies::connectivity_watchdog::Watchdog;
use crate::policies::{self, Context, DownloadSink, Fetch, Outcome, Status};
use crate::reports::{MAX_PER_CHECKIN, NewReport, ReportQueue};
use crate::safe_fs;
use crate::signals;
use crate::transport::{Transport, TransportError};

/// What a cycle achieved, for the caller's exit status and schedule.
#[derive(Debug, Default)]
pub struct Summary {
    /// The backend answered the check-in.
    pub online: bool,
    /// A received bundle was rejected.
    pub bundle_rejected: bool,
    /// Items changed / failed while converging.
    pub changed: usize,
    pub failed: usize,
    /// Seconds until the next cycle, from the settings in force.
    pub interval_seconds: u64,
}

/// How often the agent sends its clock and takes the backend's (and on each process's
/// first check-in).
const CLOCK_EVERY: u64 = 86400;

/// State-dir file holding the network interfaces the backend last acknowledged.
const NETWORK_SENT: &str = "network-sent.json";

/// The long-lived parts of a running agent.
pub struct Agent {
    pub dirs: Dirs,
    pub identity: Identity,
    pub transport: Transport,
    pub in_force: Option<InForce>,
    /// The backend acknowledged a check-in that carried this process's version.
    version_sent: bool,
    /// When this process last had the backend's time (trusted clock).
    time_sent_at: Option<u64>,
    /// Read once per process: the source of `$(sys.*)` values.
    facts: HostFacts,
    /// Reports per check-in: halved when the backend finds a body too large, grown back
    /// after each check-in that went through.
    report_batch: usize,
    /// Collects the inventory kinds and remembers what the processes kind needs.
    inventory: inventory::Collector,
    /// Metric samples not yet acknowledged (kept in the state dir).
    metrics: metrics::Queue,
    /// The latest sample, for the metrics monitor.
    reading: Option<Vec<(String, Option<f64>)>>,
}

impl Agent {
    /// Loads the identity and the last good bundle.
    pub fn new(dirs: Dirs, identity: Identity) -> Result<Self, TransportError> {
        crate::privilege::init(&identity.config.elevation_command);
        clock::load(&dirs);
        crate::proxy::export_to_children(identity.proxy.as_ref());
        let transport = Transport::mutual(
            &identity.config.server_url,
            &identity.ca_pem,
            &identity.cert_pem,
            &identity.key_pem,
            identity.proxy.as_ref(),
        )?;
        let in_force = bundle_store::load(&dirs, &identity);
        let metrics = metrics::Queue::load(&dirs.state);
        Ok(Self {
            dirs,
            identity,
            transport,
            in_force,
            version_sent: false,
            time_sent_at: None,
            facts: crate::facts::collect(),
            report_batch: MAX_PER_CHECKIN,
            inventory: inventory::Collector::default(),
            metrics,
            reading: None,
        })
    }

    fn settings(&self) -> apiary_proto::policy::settings::Settings {
        policies::settings::effective(self.in_force.as_ref().map(|b| &b.bundle))
    }

    /// Takes a metric sample if metrics are on, unless one was taken in the last `min_gap`
    /// seconds.
    fn sample_metrics(&mut self, min_gap: f64) {
        if !self.settings().metrics {
            return;
        }
        if let Some(reading) = self.metrics.sample(now(), min_gap) {
            self.reading = Some(reading);
            self.metrics.save(&self.dirs.state);
        }
    }

    /// Waits `delay` before the next cycle, sampling metrics meanwhile at the finer interval
    /// the settings ask for; false when a stop signal came.
    pub fn pause(&mut self, delay: Duration) -> bool {
        let deadline = std::time::Instant::now() + delay;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let settings = self.settings();
            let step = match settings.metrics_interval_seconds {
                Some(s) if settings.metrics => Duration::from_secs(s).min(left),
                _ => left,
            };
            if !signals::sleep(step) {
                return false;
            }
            if step == left {
                return true;
            }
            self.sample_metrics(1.0);
        }
    }

    /// Runs one cycle.
    pub fn run_cycle(&mut self) -> Summary {
        let mut summary = Summary::default();
        let mut queue = ReportQueue::load(&self.dirs.state);
        // A cycle right after a finer sample (or a restart) does not take another.
        self.sample_metrics(1.0);

        let first = self.checkin(&mut queue);
        summary.online = first.is_some();
        let mut bundle_changed = false;
        if let Some(envelope) = first.and_then(|r| r.bundle) {
            bundle_changed = self.accept(envelope, "", &mut queue, &mut summary);
        }

        let settings = policies::settings::effective(self.in_force.as_ref().map(|b| &b.bundle));
        summary.interval_seconds = settings.interval_seconds;
        let queued_before = queue.len();
        let watchdog = Watchdog::new(&self.dirs);
        if summary.online
            && let Some(outcome) = watchdog.online()
        {
            log_outcome(&outcome);
            queue.push(to_report(outcome, self.serial()), now());
        }
        let fetcher = BackendFetch {
            transport: &self.transport,
        };
        let offline = !summary.online;
        self.converge(&fetcher, &mut queue, &mut summary, |spec, vars| {
            // Before converging: a policy that hangs on the missing network must not hold
            // the watchdog back.
            if offline {
                watchdog.failed_checkin(spec, vars, now());
            }
        });

        // Something changed: tell the backend now, on the same connection, not an interval later.
        if summary.online
            && (bundle_changed || queue.len() > queued_before || summary.bundle_rejected)
        {
            self.checkin(&mut queue);
        }
        if let Err(e) = queue.save() {
            eprintln!("warning: cannot save the report queue: {e}");
        }
        summary
    }

    /// Converges the bundle in force with `fetcher` for file content, queueing what
    /// changed or failed; `before` sees the watchdog spec (if any) and the values first.
    fn converge(
        &self,
        fetcher: &dyn Fetch,
        queue: &mut ReportQueue,
        summary: &mut Summary,
        before: impl FnOnce(&ConnectivityWatchdog, &Vars),
    ) {
        let Some(in_force) = &self.in_force else {
            return;
        };
        let settings = policies::settings::effective(Some(&in_force.bundle));
        let vars = Vars::new(
            &self.facts,
            &self.identity.config.device_id,
            in_force.bundle.policies.parameters.as_ref(),
        );
        let ctx = Context {
            state_dir: &self.dirs.state,
            fetcher,
            stop_requested: &signals::stop_requested,
            vars: &vars,
            metrics: self.reading.as_deref().filter(|_| settings.metrics),
        };
        let serial = in_force.bundle.serial;
        if let Some(spec) = &in_force.bundle.policies.connectivity_watchdog {
            before(spec, &vars);
        }
        for outcome in policies::converge(&in_force.bundle, &ctx) {
            match outcome.status {
                Status::Unchanged => continue,
                Status::Changed => summary.changed += 1,
                Status::Failed => summary.failed += 1,
            }
            // Secrets never leave the device in a report, nor reach its logs.
            let outcome = redact(outcome, &vars);
            log_outcome(&outcome);
            if settings.reports {
                queue.push(to_report(outcome, serial), now());
            }
        }
    }

    /// Applies a bundle brought on a medium (`apiary-agent apply`): verified exactly as one
    /// from the backend, converged with `fetcher` for its files, and the reports queued for
    /// the next check-in. Nothing goes over the network.
    pub fn apply_offline(&mut self, envelope: Envelope, fetcher: &dyn Fetch) -> Summary {
        let mut summary = Summary::default();
        let mut queue = ReportQueue::load(&self.dirs.state);
        if self.accept(envelope, " (applied offline)", &mut queue, &mut summary) {
            self.converge(fetcher, &mut queue, &mut summary, |_, _| {});
        }
        if let Err(e) = queue.save() {
            eprintln!("warning: cannot save the report queue: {e}");
        }
        summary
    }

    /// Makes `envelope` the bundle in force if it verifies (true), else reports why not.
    fn accept(
        &mut self,
        envelope: Envelope,
        how: &str,
        queue: &mut ReportQueue,
        summary: &mut Summary,
    ) -> bool {
        match bundle_store::accept(
            &self.dirs,
            &self.identity,
            envelope.clone(),
            self.in_force.as_ref(),
        ) {
            Ok(new) => {
                eprintln!(
                    "bundle serial {} (commit {}) is now in force{how}",
                    new.bundle.serial, new.bundle.commit_id
                );
                self.in_force = Some(new);
                true
            }
            Err(e) => {
                summary.bundle_rejected = true;
                self.report_rejection(queue, &envelope.payload_hash(), &e.to_string());
                false
            }
        }
    }

    fn serial(&self) -> u64 {
        self.in_force.as_ref().map_or(0, |b| b.bundle.serial)
    }

    /// Checks in with the oldest queued reports; see [`send_shrinking`] for a body the backend
    /// finds too large.
    fn checkin(&mut self, queue: &mut ReportQueue) -> Option<CheckinResponse> {
        let mut batch = self.report_batch;
        let sent = send_shrinking(&mut batch, |n| self.checkin_batch(queue, n));
        self.report_batch = batch;
        match sent {
            Ok(response) => Some(response),
            Err(e) => {
                eprintln!("warning: check-in failed, converging from the last good bundle: {e}");
                None
            }
        }
    }

    fn checkin_batch(
        &mut self,
        queue: &mut ReportQueue,
        batch: usize,
    ) -> Result<CheckinResponse, TransportError> {
        let reports = queue.outgoing(batch);
        // Interfaces go out only when they differ from what the backend last acknowledged
        // (kept in tmpfs, so a reboot sends them again): idle check-ins stay small.
        let network_marker = self.dirs.state.join(NETWORK_SENT);
        let network = network::Unacknowledged::since(&network_marker, network::interfaces());
        let send_time = self
            .time_sent_at
            .is_none_or(|t| clock::now().saturating_sub(t) >= CLOCK_EVERY);
        let settings = self.settings();
        let vars = Vars::new(
            &self.facts,
            &self.identity.config.device_id,
            self.in_force
                .as_ref()
                .and_then(|b| b.bundle.policies.parameters.as_ref()),
        );
        let mut inventory = self
            .inventory
            .pending(&self.dirs.state, &settings, now(), &|text| {
                vars.redact(text)
            });
        let metrics = self.metrics.outgoing().filter(|_| settings.metrics);
        let request = CheckinRequest {
            time: send_time.then(clock::system_now),
            ca: send_time.then(|| apiary_proto::digest::sha256_hex(&self.identity.ca_pem)),
            network: network.as_ref().map(|n| n.list.clone()),
            agent_version: (!self.version_sent).then(|| apiary_proto::VERSION.to_string()),
            bundle_hash: self.in_force.as_ref().map(|b| b.hash.clone()),
            queue_id: if reports.is_empty() {
                String::new()
            } else {
                queue.id().to_string()
            },
            reports,
            inventory_hashes: send_time.then(|| inventory.hashes.clone()),
            inventory: std::mem::take(&mut inventory.uploads),
            metrics: metrics.clone(),
        };
        let response = self
            .transport
            .post_json::<_, CheckinResponse>(paths::CHECKIN, &request)?;
        self.version_sent = true;
        if let Some(backend) = response.time {
            self.note_clock(backend);
        }
        if let Some(ca_pem) = &response.ca_pem {
            self.trust(ca_pem);
        }
        if response.renew {
            self.renew_certificate();
        }
        if let Some(network) = &network {
            network.acknowledged(&network_marker);
        }
        self.inventory.acknowledged(
            &self.dirs.state,
            &inventory,
            &response.want_inventory,
            now(),
        );
        if let Some(sent) = &metrics {
            self.metrics
                .acknowledged(sent, response.metrics_ack, response.want_metric_names);
            self.metrics.save(&self.dirs.state);
        }
        if let Some(seq) = response.ack_seq {
            queue.ack(seq, now());
        }
        Ok(response)
    }

    /// Trusts the CA certificates the backend sent (a CA rotation): kept in `ca.crt` and used
    /// from the next connection on. A set that does not parse changes nothing.
    fn trust(&mut self, ca_pem: &str) {
        match crate::renew::trust(&self.dirs, &mut self.identity, ca_pem) {
            Ok((transport, count)) => {
                self.transport = transport;
                eprintln!("the backend's CA set changed: trusting {count} CA certificate(s)");
            }
            Err(e) => eprintln!("warning: the CA set the backend sent was not taken: {e}"),
        }
    }

    /// Replaces the device certificate, as the backend asked; a failure is logged and
    /// retried at the next check-in (the backend keeps asking).
    fn renew_certificate(&mut self) {
        match crate::renew::renew(&self.dirs, &mut self.identity, &self.transport) {
            Ok(transport) => {
                self.transport = transport;
                eprintln!("device certificate renewed");
            }
            Err(e) => eprintln!("warning: certificate renewal failed, trying again later: {e}"),
        }
    }

    /// Takes the backend's time: the floor of the agent's clock, and the skew, said once per
    /// process when it is large.
    fn note_clock(&mut self, backend: u64) {
        let skew = clock::record_backend_time(&self.dirs, backend);
        if skew.unsigned_abs() > clock::SKEWED && self.time_sent_at.is_none() {
            eprintln!(
                "warning: the system clock is {} the backend's{}",
                apiary_proto::device_api::describe_skew(skew),
                if skew < 0 {
                    "; certificates are checked, and reports stamped, on the backend's time"
                } else {
                    ""
                }
            );
        }
        self.time_sent_at = Some(clock::now());
    }

    /// Reports a rejected bundle once per distinct bundle, so a bad bundle does not flood the log.
    fn report_rejection(&self, queue: &mut ReportQueue, hash: &str, reason: &str) {
        eprintln!("error: {reason}; the last good bundle stays in force");
        let marker = self.dirs.state.join("rejected-bundle");
        let seen = safe_fs::read(&marker, safe_fs::STATE_FILE_LIMIT);
        if seen.is_ok_and(|h| h.as_deref() == Some(hash.as_bytes())) {
            return;
        }
        queue.push(
            NewReport {
                level: Level::Error,
                policy: apiary_proto::device_api::REFUSED_BUNDLE_POLICY.into(),
                item: Some(hash.to_string()),
                message: format!("bundle rejected, the last good bundle stays in force: {reason}"),
                output: None,
                bundle_serial: self.in_force.as_ref().map(|b| b.bundle.serial),
            },
            now(),
        );
        if let Err(e) = safe_fs::write_atomic(&marker, hash.as_bytes(), 0o600) {
            eprintln!("warning: cannot record the rejected bundle: {e}");
        }
    }
}

/// Sends with up to `*batch` reports. A 413 (body too large: a proxy's limit, or an older
/// backend's) is retried at once with half as many, down to one, so no batch can wedge the
/// queue; each send that goes through doubles the size back towards [`MAX_PER_CHECKIN`].
fn send_shrinking<T>(
    batch: &mut usize,
    mut send: impl FnMut(usize) -> Result<T, TransportError>,
) -> Result<T, TransportError> {
    loop {
        match send(*batch) {
            Err(TransportError::Status { status: 413, .. }) if *batch > 1 => {
                *batch = (*batch / 2).max(1);
                eprintln!(
                    "warning: the backend found the check-in too large; sending {} report(s) at a time",
                    *batch
                );
            }
            Ok(sent) => {
                *batch = batch.saturating_mul(2).min(MAX_PER_CHECKIN);
                return Ok(sent);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Fetches file-manager content over the device API.
struct BackendFetch<'a> {
    transport: &'a Transport,
}

impl Fetch for BackendFetch<'_> {
    fn fetch(&self, sha256: &str, sink: &mut dyn DownloadSink) -> Result<(), TransportError> {
        let path = format!("{}{sha256}", paths::FILES_PREFIX);
        self.transport.download(&path, sink)
    }
}

fn redact(mut o: Outcome, vars: &Vars) -> Outcome {
    o.message = vars.redact(&o.message);
    o.item = o.item.map(|i| vars.redact(&i));
    o.output = o.output.map(|out| vars.redact(&out));
    o
}

fn to_report(outcome: Outcome, serial: u64) -> NewReport {
    NewReport {
        level: outcome.level,
        policy: outcome.policy.to_string(),
        item: outcome.item,
        message: outcome.message,
        output: outcome.output,
        bundle_serial: Some(serial),
    }
}

fn log_outcome(o: &Outcome) {
    eprintln!("{}: {}: {}", o.level.as_str(), o.policy, o.message);
}

/// Unix seconds now, on the agent's trusted clock (see [`clock`]).
pub fn now() -> u64 {
    clock::now()
}

/// The pause before the next cycle: the interval plus up to 10 % random jitter, so a fleet
/// restarted together does not check in together.
pub fn next_delay(interval_seconds: u64) -> Duration {
    let mut bytes = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    let jitter_ms = u64::from(u32::from_le_bytes(bytes)) % (interval_seconds * 100 + 1);
    Duration::from_secs(interval_seconds) + Duration::from_millis(jitter_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = next_delay(300);
            assert!(
                d >= Duration::from_secs(300) && d <= Duration::from_secs(330),
                "{d:?}"
            );
        }
    }

    fn too_large() -> TransportError {
        TransportError::Status {
            url: "https://backend/checkin".into(),
            status: 413,
            message: "body too large".into(),
        }
    }

    #[test]
    fn a_too_large_check_in_is_resent_with_half_the_reports_until_it_fits() {
        // A proxy in front of the backend takes at most 30 reports per body.
        let mut tried = Vec::new();
        let mut batch = MAX_PER_CHECKIN;
        let sent = send_shrinking(&mut batch, |n| {
            tried.push(n);
            if n > 30 { Err(too_large()) } else { Ok(n) }
        });
        assert_eq!(sent.expect("goes through once small enough"), 25);
        assert_eq!(tried, [200, 100, 50, 25]);
        assert_eq!(batch, 50, "grows back after a check-in that went through");
        for _ in 0..5 {
            let _ = send_shrinking(
                &mut batch,
                |n| if n > 30 { Err(too_large()) } else { Ok(n) },
            );
        }
        assert!(batch <= 50, "never stays above what goes through: {batch}");
    }

    #[test]
    fn a_single_report_too_large_fails_the_check_in_without_looping() {
        let mut tries = 0;
        let mut batch = MAX_PER_CHECKIN;
        let sent = send_shrinking(&mut batch, |_| -> Result<(), _> {
            tries += 1;
            Err(too_large())
        });
        assert!(matches!(
            sent,
            Err(TransportError::Status { status: 413, .. })
        ));
        assert_eq!(batch, 1);
        assert_eq!(tries, 8, "200, 100, 50, 25, 12, 6, 3, 1: then it gives up");
    }

    #[test]
    fn other_failures_keep_the_batch_size() {
        let mut batch = 40;
        let sent = send_shrinking(&mut batch, |_| -> Result<(), _> {
            Err(TransportError::Status {
                url: "u".into(),
                status: 503,
                message: "busy".into(),
            })
        });
        assert!(sent.is_err());
        assert_eq!(batch, 40);
    }
}
