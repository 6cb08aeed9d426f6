//! The `file_distribution` policy: files from the file manager, kept identical on the device.
//!
//! Plain files stream from the backend into a temporary file beside the destination and are
//! renamed into place only after their SHA-256 matches. Templates are cached (small, in the
//! state dir), rendered with the set's parameters, and written atomically. The set's command
//! runs once after any of its files changed.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use apiary_proto::digest::{self, Sha256};
use apiary_proto::policy::InBundle;
use apiary_proto::policy::file_distribution::{DistributedFile, FileDistribution, FileSet};

use super::converged::Converged;
use super::file_access::{self, Route};
use super::file_attributes::{self, Actual, Wanted};
use super::{Context, DownloadSink, ItemPolicy, Outcome};
use crate::command;
use crate::elevated::{self, Stat};
use crate::safe_fs::{self, AtomicFile, Dir};
use crate::template;

const NAME: &str = FileDistribution::NAME;
/// Largest template the agent renders (templates are held in memory; plain files never are).
pub const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;
/// Attempts per download in one cycle; the next cycle tries again.
pub const DOWNLOAD_ATTEMPTS: u32 = 4;
/// How long a pre-condition or command may run before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// Each set is an item: its files share a pre-condition and a command.
impl ItemPolicy for FileDistribution {
    type Item = FileSet;
    type Tools = ();

    fn items(&self) -> &[FileSet] {
        &self.sets
    }

    fn item_name(set: &FileSet) -> String {
        label(set).to_string()
    }

    fn converge_item(
        &self,
        _: &(),
        set: &FileSet,
        ctx: &Context<'_>,
        record: &mut Converged,
        out: &mut Vec<Outcome>,
    ) -> Result<(), String> {
        converge_set(ctx, set, record, out);
        Ok(())
    }
}

/// The set's name in reports.
fn label(set: &FileSet) -> &str {
    if set.label.is_empty() {
        "file set"
    } else {
        &set.label
    }
}

fn converge_set(ctx: &Context<'_>, set: &FileSet, written: &mut Converged, out: &mut Vec<Outcome>) {
    let label = label(set);
    if let Some(pre) = &set.pre_condition {
        match command::run_with_values(pre, ctx.vars, COMMAND_TIMEOUT) {
            Ok(r) if r.success() => {}
            Ok(r) => {
                let why = r.describe_failure(COMMAND_TIMEOUT);
                out.push(Outcome::unchanged(
                    NAME,
                    label.to_string(),
                    format!("pre-condition {why}; set skipped"),
                ));
                return;
            }
            Err(e) => {
                out.push(Outcome::failed(
                    NAME,
                    label.to_string(),
                    format!("pre-condition could not start: {e}"),
                ));
                return;
            }
        }
    }

    let parameters = ctx.vars.template_values(&set.parameters);
    let mut changed = false;
    for file in &set.files {
        let destination = ctx.vars.text(&file.destination);
        match converge_file(ctx, &parameters, file, &destination, written) {
            Ok(FileChange::Unchanged) => out.push(Outcome::unchanged(
                NAME,
                destination.clone(),
                format!("{destination} is up to date"),
            )),
            Ok(FileChange::Written { drift }) => {
                changed = true;
                let message = if drift {
                    format!(
                        "{destination} was changed on the device; restored from {}",
                        file.source
                    )
                } else {
                    format!("{destination} written from {}", file.source)
                };
                out.push(Outcome::changed(NAME, destination, drift, message));
            }
            Ok(FileChange::Attributes { drift, what }) => {
                changed = true;
                let message = if drift {
                    format!(
                        "{destination} had its attributes changed on the device; restored: {what}"
                    )
                } else {
                    format!("{destination}: {what}")
                };
                out.push(Outcome::changed(NAME, destination, drift, message));
            }
            Err(e) => out.push(Outcome::failed(NAME, destination, e)),
        }
    }

    if let (true, Some(cmd)) = (changed, &set.command) {
        let item = format!("{label}: command");
        match command::run_with_values(cmd, ctx.vars, COMMAND_TIMEOUT) {
            Ok(r) if r.success() => {
                let mut o = Outcome::changed(
                    NAME,
                    item,
                    false,
                    format!("ran command after change: {cmd}"),
                );
                o.output = Some(r.output);
                out.push(o);
            }
            Ok(r) => {
                let mut o = Outcome::failed(
                    NAME,
                    item,
                    format!(
                        "command after change {}: {cmd}",
                        r.describe_failure(COMMAND_TIMEOUT)
                    ),
                );
                o.output = Some(r.output);
                out.push(o);
            }
            Err(e) => out.push(Outcome::failed(
                NAME,
                item,
                format!("command could not start: {e}"),
            )),
        }
    }
}

enum FileChange {
    Unchanged,
    Written {
        drift: bool,
    },
    /// Same content; owner, group or mode corrected.
    Attributes {
        drift: bool,
        what: String,
    },
}

fn converge_file(
    ctx: &Context<'_>,
    parameters: &BTreeMap<String, String>,
    file: &DistributedFile,
    destination: &str,
    written: &mut Converged,
) -> Result<FileChange, String> {
    check_destination(destination)?;
    let (parent, name) = safe_fs::split(Path::new(destination)).map_err(|e| e.to_string())?;
    let rendered = if file.template {
        let source = cached_source(ctx, file)?;
        Some(template::render(&source, parameters).map_err(|e| format!("{}: {e}", file.source))?)
    } else {
        None
    };
    let (desired, size) = match &rendered {
        Some(bytes) => (digest::sha256_hex(bytes), bytes.len() as u64),
        None => (file.sha256.clone(), file.size),
    };

    let mut wanted = Wanted::of(file)?;
    let holds_secret = rendered
        .as_ref()
        .is_some_and(|bytes| ctx.vars.secrets().appear_in(bytes));
    if wanted.mode.is_none() && holds_secret {
        // A rendered secret is readable by its owner only, unless the bundle sets a mode.
        wanted.mode = Some(file_attributes::SECRET_MODE);
    }
    // The record covers content and attributes: a new owner or mode is a new desired state.
    let fingerprint = Converged::fingerprint(&[&desired, &wanted.describe()]);
    let path = Path::new(destination);
    let mut route = Route::for_destination(parent, &wanted);
    let (dir, existing) = look(route, path, &desired, size)?;
    // A file of another user's in a directory the agent may write is still theirs to replace.
    if existing
        .attributes
        .is_some_and(|a| !file_access::owned_by_agent(a))
    {
        route = Route::Elevated;
    }
    // Drift: the file is there but differs from what this agent itself last made of the same
    // desired state. Anything else is a new desired state, not a manual change.
    let drift = written.was(destination, &fingerprint);
    if let (Some(actual), true) = (existing.attributes, existing.same_content) {
        let differences = wanted.differences(actual);
        if differences.is_empty() {
            written.record(destination, &fingerprint);
            return Ok(FileChange::Unchanged);
        }
        match (&dir, route) {
            (Some(dir), Route::Direct) => wanted.apply(dir, name, actual)?,
            _ => file_access::apply_elevated(path, &wanted, actual)?,
        }
        written.record(destination, &fingerprint);
        return Ok(FileChange::Attributes {
            drift,
            what: differences.join(", "),
        });
    }

    let mut attributes = wanted.for_new_content(existing.attributes);
    match (route, dir) {
        (Route::Direct, dir) => {
            if existing.attributes.is_none() {
                file_access::default_to_agent(&wanted, &mut attributes);
            }
            let dir = match dir {
                Some(dir) => dir,
                None => {
                    Dir::create_all(parent, 0o755).map_err(|e| format!("cannot create: {e}"))?
                }
            };
            match rendered {
                Some(bytes) => safe_fs::write_in(
                    &dir,
                    name,
                    &bytes,
                    attributes.mode,
                    Some((attributes.uid, attributes.gid)),
                )
                .map_err(|e| format!("cannot write: {e}"))?,
                None => fetch_into_place(ctx, file, &dir, name, attributes)?,
            }
        }
        (Route::Elevated, _) => {
            let owner = Some((attributes.uid, attributes.gid));
            match rendered {
                Some(bytes) => {
                    let input = command::Input::Bytes(&bytes);
                    elevated::write(path, input, attributes.mode, owner, &desired)?
                }
                None => fetch_elevated(ctx, file, path, attributes)?,
            }
        }
    }
    written.record(destination, &fingerprint);
    Ok(FileChange::Written {
        drift: drift && existing.present,
    })
}

/// The destination's directory (held only on the direct route) and what it holds now.
fn look(
    route: Route,
    path: &Path,
    desired: &str,
    size: u64,
) -> Result<(Option<Dir>, Existing), String> {
    let (parent, name) = safe_fs::split(path).map_err(|e| e.to_string())?;
    match route {
        Route::Direct => {
            let dir = match Dir::open(parent) {
                Ok(dir) => Some(dir),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e.to_string()),
            };
            let existing = match &dir {
                Some(dir) => Existing::of(dir, name, desired, size)?,
                None => Existing::default(),
            };
            Ok((dir, existing))
        }
        // Most system files are readable by all: only what the agent cannot read costs a
        // call through elevation.
        Route::Elevated => {
            match Dir::open(parent).map(|dir| Existing::of(&dir, name, desired, size)) {
                Ok(Ok(existing)) => Ok((None, existing)),
                _ => Ok((None, Existing::elevated(path, desired)?)),
            }
        }
    }
}

/// What the destination holds now.
#[derive(Default)]
struct Existing {
    present: bool,
    /// The attributes of a regular file with no other hard link: the only kind whose owner and
    /// mode a replacement inherits, or that is changed in place.
    attributes: Option<Actual>,
    same_content: bool,
}

impl Existing {
    /// Looks at `name` in `dir`, reading it only when its size is the desired one. A symlink,
    /// FIFO, device or hard-linked file is present but not ours: it is replaced by a rename,
    /// never written through.
    fn of(dir: &Dir, name: &str, desired: &str, size: u64) -> Result<Self, String> {
        let Some(meta) = dir.stat(name).map_err(|e| e.to_string())? else {
            return Ok(Self::default());
        };
        if meta.is_dir() {
            return Err(format!("{} is a directory", dir.join(name).display()));
        }
        if !meta.is_file() || meta.nlink() != 1 {
            return Ok(Self {
                present: true,
                ..Self::default()
            });
        }
        let same_content = meta.len() == size
            && match dir.open_file(name).map_err(|e| e.to_string())? {
                Some((f, _)) => {
                    digest::sha256_hex_reader(f)
                        .map_err(|e| format!("cannot read {}: {e}", dir.join(name).display()))?
                        == desired
                }
                None => false,
            };
        Ok(Self {
            present: true,
            attributes: Some(Actual::of(&meta)),
            same_content,
        })
    }

    /// The same, as root sees it through the elevated helper.
    fn elevated(path: &Path, desired: &str) -> Result<Self, String> {
        Ok(match elevated::stat(path)? {
            Stat::Absent => Self::default(),
            Stat::Directory => return Err(format!("{} is a directory", path.display())),
            Stat::Other => Self {
                present: true,
                ..Self::default()
            },
            Stat::File {
                uid,
                gid,
                mode,
                sha256,
                ..
            } => Self {
                present: true,
                attributes: Some(Actual { uid, gid, mode }),
                same_content: sha256 == desired,
            },
        })
    }
}

/// An expanded destination must still be a clean absolute path: a parameter value cannot
/// point a file somewhere the bundle did not say.
fn check_destination(path: &str) -> Result<(), String> {
    let clean = apiary_proto::policy::rules::is_clean_absolute_path(path) && !path.contains("$(");
    if clean {
        Ok(())
    } else {
        Err(format!(
            "destination {path:?} is not a clean absolute path after expansion (unknown $(key), or . or .. segments)"
        ))
    }
}

/// Streams a plain file into a temp file beside `name`, renaming only if the digest matches.
fn fetch_into_place(
    ctx: &Context<'_>,
    file: &DistributedFile,
    dir: &Dir,
    name: &str,
    attributes: Actual,
) -> Result<(), String> {
    let tmp = dir
        .atomic(name, attributes.mode)
        .and_then(|tmp| {
            tmp.chown(attributes.uid, attributes.gid, attributes.mode)?;
            Ok(tmp)
        })
        .map_err(|e| format!("cannot write: {e}"))?;
    let mut sink = HashingWriter::new(tmp);
    download_verified(ctx, file, &mut sink)?;
    sink.inner
        .commit()
        .map_err(|e| format!("cannot install: {e}"))
}

/// Downloads a plain file into the state dir, then has the elevated helper install it.
fn fetch_elevated(
    ctx: &Context<'_>,
    file: &DistributedFile,
    path: &Path,
    attributes: Actual,
) -> Result<(), String> {
    let state = Dir::open(ctx.state_dir).map_err(|e| e.to_string())?;
    // Never committed: dropped, it is removed.
    let upload = state
        .atomic("elevated-upload", 0o600)
        .map_err(|e| format!("cannot hold the download: {e}"))?;
    let mut sink = HashingWriter::new(upload);
    download_verified(ctx, file, &mut sink)?;
    let content = sink.inner.reader().map_err(|e| e.to_string())?;
    let owner = Some((attributes.uid, attributes.gid));
    elevated::write(
        path,
        command::Input::File(content),
        attributes.mode,
        owner,
        &file.sha256,
    )
}

/// Downloads `file` into `sink` until its SHA-256 matches, at most [`DOWNLOAD_ATTEMPTS`]
/// times, waiting 1, 2, 4 s between attempts. A cut transfer resumes where it stopped; a
/// complete one with the wrong digest starts over. A refusal (the backend will not serve
/// the file to this device, or has no such file) is not retried: asking again in the same
/// cycle gets the same answer. Nothing is installed until the digest matches. A fetcher
/// that would give the same bytes again (an offline bundle) gets one attempt.
fn download_verified(
    ctx: &Context<'_>,
    file: &DistributedFile,
    sink: &mut dyn VerifiedSink,
) -> Result<(), String> {
    let attempts = if ctx.fetcher.retries() {
        DOWNLOAD_ATTEMPTS
    } else {
        1
    };
    let restart = |sink: &mut dyn VerifiedSink| {
        sink.restart()
            .map_err(|e| format!("cannot restart the download of {}: {e}", file.source))
    };
    let mut last = String::new();
    for attempt in 1..=attempts {
        if sink.offset() >= file.size {
            // Everything arrived (the connection may have dropped right after): check it.
            if sink.digest() == file.sha256 {
                return Ok(());
            }
            restart(sink)?;
        }
        match ctx.fetcher.fetch(&file.sha256, sink) {
            Ok(()) => {
                let got = sink.digest();
                if got == file.sha256 {
                    return Ok(());
                }
                last = format!("the content has sha256 {got}, expected {}", file.sha256);
                restart(sink)?;
            }
            Err(e) if !e.is_transient() => {
                return Err(format!(
                    "download of {} refused: {e}; not installed",
                    file.source
                ));
            }
            // Keep what arrived: the next attempt continues from there.
            Err(e) => last = e.to_string(),
        }
        if attempt < attempts && !pause(ctx, Duration::from_secs(1 << (attempt - 1))) {
            break;
        }
    }
    Err(format!(
        "download of {} failed after {attempts} attempt{} ({} of {} bytes held): {last}; not installed",
        file.source,
        if attempts == 1 { "" } else { "s" },
        sink.offset(),
        file.size
    ))
}

/// Sleeps, returning early (false) when the agent is asked to stop.
fn pause(ctx: &Context<'_>, duration: Duration) -> bool {
    let deadline = std::time::Instant::now() + duration;
    while std::time::Instant::now() < deadline {
        if (ctx.stop_requested)() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// A template's source: from the cache in the state dir, or downloaded and verified into it.
fn cached_source(ctx: &Context<'_>, file: &DistributedFile) -> Result<Vec<u8>, String> {
    if file.size > MAX_TEMPLATE_BYTES {
        return Err(format!(
            "template {} is {} bytes; templates are limited to {MAX_TEMPLATE_BYTES}",
            file.source, file.size
        ));
    }
    let dir = ctx.state_dir.join("files");
    let path = dir.join(&file.sha256);
    if let Ok(Some(bytes)) = safe_fs::read(&path, MAX_TEMPLATE_BYTES)
        && digest::sha256_hex(&bytes) == file.sha256
    {
        return Ok(bytes);
    }
    crate::config::create_private_dir(&dir).map_err(|e| format!("cannot create: {e}"))?;
    let mut sink = LimitedWriter {
        inner: Vec::with_capacity(file.size as usize),
        hash: Sha256::new(),
        limit: MAX_TEMPLATE_BYTES,
    };
    download_verified(ctx, file, &mut sink)?;
    let bytes = sink.inner;
    safe_fs::write_atomic(&path, &bytes, 0o600).map_err(|e| format!("cannot cache: {e}"))?;
    Ok(bytes)
}

/// A download sink that can tell the digest of what it holds.
trait VerifiedSink: DownloadSink {
    fn digest(&self) -> String;
}

/// Streams into the temporary file beside the destination, hashing as it goes.
struct HashingWriter {
    inner: AtomicFile,
    hash: Sha256,
    written: u64,
}

impl HashingWriter {
    fn new(inner: AtomicFile) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
            written: 0,
        }
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl DownloadSink for HashingWriter {
    fn offset(&self) -> u64 {
        self.written
    }

    fn restart(&mut self) -> io::Result<()> {
        self.inner.restart()?;
        self.hash = Sha256::new();
        self.written = 0;
        Ok(())
    }
}

impl VerifiedSink for HashingWriter {
    fn digest(&self) -> String {
        self.hash.hex()
    }
}

/// Collects a template in memory, refusing more than `limit` bytes.
struct LimitedWriter {
    inner: Vec<u8>,
    hash: Sha256,
    limit: u64,
}

impl Write for LimitedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.inner.len() as u64 + buf.len() as u64 > self.limit {
            return Err(io::Error::other("template is larger than announced"));
        }
        self.inner.extend_from_slice(buf);
        self.hash.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl DownloadSink for LimitedWriter {
    fn offset(&self) -> u64 {
        self.inner.len() as u64
    }

    fn restart(&mut self) -> io::Result<()> {
        self.inner.clear();
        self.hash = Sha256::new();
        Ok(())
    }
}

impl VerifiedSink for LimitedWriter {
    fn digest(&self) -> String {
        self.hash.hex()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policies::{Fetch, Status};
    use crate::transport::TransportError;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::fs;

    /// Serves content from memory; stands in for the backend in these unit tests only
    /// (the end-to-end tests use a real backend).
    struct MemoryFetch {
        files: HashMap<String, Vec<u8>>,
        calls: RefCell<u32>,
        /// Cut the first transfer after this many bytes, as a dropped connection would.
        cut_first_at: Option<usize>,
        /// The offset each call started from.
        offsets: RefCell<Vec<u64>>,
        /// Answer every request with this status instead.
        status: Option<u16>,
    }

    impl MemoryFetch {
        fn new(files: HashMap<String, Vec<u8>>) -> Self {
            Self {
                files,
                calls: RefCell::new(0),
                cut_first_at: None,
                offsets: RefCell::new(Vec::new()),
                status: None,
            }
        }
    }

    impl Fetch for MemoryFetch {
        fn fetch(&self, sha256: &str, sink: &mut dyn DownloadSink) -> Result<(), TransportError> {
            *self.calls.borrow_mut() += 1;
            let offset = sink.offset();
            self.offsets.borrow_mut().push(offset);
            let url = format!("memory:{sha256}");
            if let Some(status) = self.status {
                return Err(TransportError::Status {
                    url,
                    status,
                    message: "refused".into(),
                });
            }
            let bytes = self
                .files
                .get(sha256)
                .ok_or_else(|| TransportError::Status {
                    url: url.clone(),
                    status: 404,
                    message: "no such file".into(),
                })?;
            let rest = &bytes[offset as usize..];
            let sink_err = |source| TransportError::Sink {
                url: url.clone(),
                source,
            };
            match self.cut_first_at {
                Some(cut) if *self.calls.borrow() == 1 => {
                    sink.write_all(&rest[..cut]).map_err(sink_err)?;
                    Err(TransportError::Body {
                        url: url.clone(),
                        message: "connection reset".into(),
                    })
                }
                _ => sink.write_all(rest).map_err(sink_err),
            }
        }
    }

    fn file(content: &[u8], dest: &Path, template: bool) -> DistributedFile {
        DistributedFile {
            source: "/src".into(),
            sha256: digest::sha256_hex(content),
            size: content.len() as u64,
            destination: dest.to_string_lossy().into_owned(),
            template,
            owner: None,
            group: None,
            mode: None,
        }
    }

    fn run(spec: &FileDistribution, state: &Path, fetch: &MemoryFetch) -> Vec<Outcome> {
        let ctx = Context {
            metrics: None,
            state_dir: state,
            fetcher: fetch,
            stop_requested: &|| false,
            vars: &crate::expand::Vars::default(),
        };
        crate::policies::converge_items(spec, &ctx)
    }

    #[test]
    fn renders_restores_and_is_idempotent() {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("state");
        fs::create_dir(&state).unwrap();
        let dest = root.path().join("etc/app/app.conf");
        let marker = root.path().join("ran");
        let tpl = b"server={{server}}\n".to_vec();
        let fetch = MemoryFetch::new(HashMap::from([(digest::sha256_hex(&tpl), tpl.clone())]));
        let spec = FileDistribution {
            sets: vec![FileSet {
                label: "app".into(),
                command: Some(format!("echo restarted >> {}", marker.display())),
                parameters: BTreeMap::from([("server".into(), "mqtt.local".into())]),
                files: vec![file(&tpl, &dest, true)],
                ..FileSet::default()
            }],
        };

        let first = run(&spec, &state, &fetch);
        assert_eq!(fs::read_to_string(&dest).unwrap(), "server=mqtt.local\n");
        assert_eq!(first.len(), 2, "{first:?}");
        assert_eq!(first[0].level, apiary_proto::device_api::Level::Info);
        assert_eq!(first[1].output.as_deref(), Some(""));
        assert_eq!(fs::read_to_string(&marker).unwrap(), "restarted\n");

        let second = run(&spec, &state, &fetch);
        assert_eq!(second.len(), 1, "{second:?}");
        assert_eq!(
            second[0].status,
            Status::Unchanged,
            "second run changes nothing"
        );
        assert_eq!(*fetch.calls.borrow(), 1, "template came from the cache");

        fs::write(&dest, "server=evil\n").unwrap();
        let third = run(&spec, &state, &fetch);
        assert_eq!(fs::read_to_string(&dest).unwrap(), "server=mqtt.local\n");
        assert_eq!(third[0].level, apiary_proto::device_api::Level::Warning);
        assert!(
            third[0].message.contains("changed on the device"),
            "{third:?}"
        );
        assert_eq!(
            fs::read_to_string(&marker).unwrap(),
            "restarted\nrestarted\n"
        );
    }

    #[test]
    fn a_template_holding_a_secret_is_private_unless_the_bundle_sets_a_mode() {
        use apiary_proto::policy::parameters::Parameters;
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("state");
        fs::create_dir(&state).unwrap();
        let tpl = b"password={{token}}\nname={{name}}\n".to_vec();
        let plain_tpl = b"name={{name}}\n".to_vec();
        let fetch = MemoryFetch::new(HashMap::from([
            (digest::sha256_hex(&tpl), tpl.clone()),
            (digest::sha256_hex(&plain_tpl), plain_tpl.clone()),
        ]));
        let params = Parameters {
            values: BTreeMap::from([("name".into(), "gw".into())]),
            secrets: BTreeMap::from([("token".into(), "hunter2-long".into())]),
        };
        let vars = crate::expand::Vars::new(&Default::default(), "dev", Some(&params));
        let ctx = Context {
            metrics: None,
            state_dir: &state,
            fetcher: &fetch,
            stop_requested: &|| false,
            vars: &vars,
        };
        let secret = root.path().join("secret.conf");
        let public = root.path().join("public.conf");
        let mut explicit = file(&tpl, &public, true);
        explicit.mode = Some(0o644);
        let plain = root.path().join("plain.conf");
        let spec = FileDistribution {
            sets: vec![FileSet {
                files: vec![
                    file(&tpl, &secret, true),
                    explicit,
                    file(&plain_tpl, &plain, true),
                ],
                ..FileSet::default()
            }],
        };
        let out = crate::policies::converge_items(&spec, &ctx);
        assert!(out.iter().all(|o| o.status == Status::Changed), "{out:?}");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&secret), 0o600);
        assert_eq!(mode(&public), 0o644, "the bundle's mode wins");
        assert_eq!(mode(&plain), 0o644, "no secret, the usual default");
        // A local chmod of the secret file is put back.
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
        crate::policies::converge_items(&spec, &ctx);
        assert_eq!(mode(&secret), 0o600);
    }

    #[test]
    fn mode_is_set_kept_and_restored() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("state");
        fs::create_dir(&state).unwrap();
        let dest = root.path().join("deep/er/secret.conf");
        let content = b"k=v\n".to_vec();
        let fetch = MemoryFetch::new(HashMap::from([(
            digest::sha256_hex(&content),
            content.clone(),
        )]));
        let mut f = file(&content, &dest, false);
        f.mode = Some(0o640);
        let spec = FileDistribution {
            sets: vec![FileSet {
                files: vec![f],
                ..FileSet::default()
            }],
        };
        let mode = || fs::metadata(&dest).unwrap().permissions().mode() & 0o7777;

        let first = run(&spec, &state, &fetch);
        assert_eq!(first[0].status, Status::Changed, "{first:?}");
        assert_eq!(mode(), 0o640, "new file created with the configured mode");
        assert_eq!(run(&spec, &state, &fetch)[0].status, Status::Unchanged);

        fs::set_permissions(&dest, fs::Permissions::from_mode(0o666)).unwrap();
        let drifted = run(&spec, &state, &fetch);
        assert_eq!(mode(), 0o640);
        assert_eq!(drifted[0].level, apiary_proto::device_api::Level::Warning);
        assert!(
            drifted[0].message.contains("mode 0666 -> 0640"),
            "{drifted:?}"
        );
        assert_eq!(
            *fetch.calls.borrow(),
            1,
            "same content is not fetched again"
        );
    }

    #[test]
    fn plain_file_with_wrong_content_is_never_installed() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("bin.dat");
        fs::write(&dest, b"old").unwrap();
        let wanted = b"new content".to_vec();
        let mut f = file(&wanted, &dest, false);
        let fetch = MemoryFetch::new(HashMap::from([(f.sha256.clone(), b"tampered".to_vec())]));
        f.size = 8;
        let spec = FileDistribution {
            sets: vec![FileSet {
                files: vec![f],
                ..FileSet::default()
            }],
        };
        let out = run(&spec, root.path(), &fetch);
        assert_eq!(out[0].status, Status::Failed);
        assert!(out[0].message.contains("not installed"), "{out:?}");
        assert!(out[0].message.contains("after 4 attempts"), "{out:?}");
        assert_eq!(
            *fetch.calls.borrow(),
            DOWNLOAD_ATTEMPTS,
            "bounded: no retry storm"
        );
        assert_eq!(
            *fetch.offsets.borrow(),
            [0, 0, 0, 0],
            "a wrong whole starts over"
        );
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        assert_eq!(
            fs::read_dir(root.path()).unwrap().count(),
            1,
            "temp file cleaned up"
        );
    }

    #[test]
    fn a_refused_download_is_not_retried() {
        for status in [403, 404] {
            let root = tempfile::tempdir().unwrap();
            let dest = root.path().join("app.bin");
            let mut fetch = MemoryFetch::new(HashMap::new());
            fetch.status = Some(status);
            let spec = FileDistribution {
                sets: vec![FileSet {
                    files: vec![file(b"content", &dest, false)],
                    ..FileSet::default()
                }],
            };
            let out = run(&spec, root.path(), &fetch);
            assert_eq!(out[0].status, Status::Failed);
            assert!(out[0].message.contains("refused"), "{out:?}");
            assert!(out[0].message.contains(&status.to_string()), "{out:?}");
            assert_eq!(*fetch.calls.borrow(), 1, "{status} is asked once");
            assert!(!dest.exists());
        }
    }

    #[test]
    fn a_cut_download_resumes_where_it_stopped() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("big.bin");
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let f = file(&content, &dest, false);
        let mut fetch = MemoryFetch::new(HashMap::from([(f.sha256.clone(), content.clone())]));
        fetch.cut_first_at = Some(70_000);
        let spec = FileDistribution {
            sets: vec![FileSet {
                files: vec![f],
                ..FileSet::default()
            }],
        };
        let out = run(&spec, root.path(), &fetch);
        assert_eq!(out[0].status, Status::Changed, "{out:?}");
        assert_eq!(fs::read(&dest).unwrap(), content);
        assert_eq!(
            *fetch.offsets.borrow(),
            [0, 70_000],
            "the second attempt asked for the rest"
        );
    }

    #[test]
    fn false_pre_condition_skips_the_set() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("x");
        let fetch = MemoryFetch::new(HashMap::new());
        let spec = FileDistribution {
            sets: vec![FileSet {
                pre_condition: Some("false".into()),
                files: vec![file(b"x", &dest, false)],
                ..FileSet::default()
            }],
        };
        let out = run(&spec, root.path(), &fetch);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, Status::Unchanged);
        assert!(
            out[0]
                .message
                .contains("pre-condition exited with status 1"),
            "{out:?}"
        );
        assert!(!dest.exists());
    }

    #[test]
    fn missing_parameter_fails_the_file_and_keeps_the_old_one() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("c.conf");
        fs::write(&dest, "keep\n").unwrap();
        let tpl = b"x={{nope}}".to_vec();
        let fetch = MemoryFetch::new(HashMap::from([(digest::sha256_hex(&tpl), tpl.clone())]));
        let spec = FileDistribution {
            sets: vec![FileSet {
                files: vec![file(&tpl, &dest, true)],
                ..FileSet::default()
            }],
        };
        let out = run(&spec, root.path(), &fetch);
        assert!(out[0].message.contains("{{nope}}"), "{out:?}");
        assert_eq!(fs::read_to_string(&dest).unwrap(), "keep\n");
    }
}
