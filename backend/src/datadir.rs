//! The data directory: database, CA, server certificate, bundle-signing key, admin token.
//!
//! The first start creates everything and writes a marker last. Later starts require every
//! part to be present and readable: a damaged or half-created directory is an error naming
//! the problem, never a silent re-initialisation that would orphan every enrolled device.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use apiary_proto::signed::BundleSigner;
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;

use crate::pki::{Authority, CertAndKey, PkiError};
use crate::secrets::SecretBox;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};

const MARKER: &str = ".apiary-initialized";
/// Layout version in the marker. 2 added `secrets.key`; a version-1 dir gets one on open.
const LAYOUT: u32 = 2;

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error(
        "data dir {0} is not empty but was never fully initialised (no {MARKER}); \
         move it away to start fresh, or point --data-dir elsewhere"
    )]
    HalfInitialised(PathBuf),
    #[error("data dir {dir} is damaged: {file} is missing; restore it from a backup")]
    Missing { dir: PathBuf, file: String },
    #[error("data dir {dir}: {file} is unreadable: {message}")]
    Unreadable {
        dir: PathBuf,
        file: String,
        message: String,
    },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An opened data directory.
pub struct DataDir {
    pub root: PathBuf,
    pub store: SqliteStore,
    pub authority: Authority,
    pub server: CertAndKey,
    pub signer: BundleSigner,
    pub secrets: SecretBox,
    /// The admin token, only on the start that created it.
    pub new_admin_token: Option<String>,
}

impl DataDir {
    /// Opens `root`, initialising it if it does not exist or is empty.
    ///
    /// `server_names` are the DNS names and addresses the device-API certificate must cover;
    /// the certificate is re-issued (by the same CA) when they change or it nears expiry.
    pub async fn open(root: &Path, server_names: &[String]) -> Result<Self, DataDirError> {
        let fresh = match fs::read_dir(root) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => {
                return Err(DataDirError::Unreadable {
                    dir: root.to_path_buf(),
                    file: ".".into(),
                    message: e.to_string(),
                });
            }
        };
        if fresh {
            Self::initialise(root, server_names).await
        } else if !root.join(MARKER).exists() {
            Err(DataDirError::HalfInitialised(root.to_path_buf()))
        } else {
            Self::reopen(root, server_names)
        }
    }

    async fn initialise(root: &Path, server_names: &[String]) -> Result<Self, DataDirError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|source| DataDirError::Write {
                path: root.to_path_buf(),
                source,
            })?;
        let store = SqliteStore::open(&root.join("apiary.db"), true)?;

        let ca = Authority::generate()?;
        write(root, "ca.crt", ca.cert_pem.as_bytes(), 0o644)?;
        write(root, "ca.key", ca.key_pem.as_bytes(), 0o600)?;
        let authority = Authority::load(&ca.cert_pem, &ca.key_pem)?;
        let server = issue_server(root, &authority, server_names)?;

        let signing = BundleSigner::generate_pkcs8()
            .map_err(|_| PkiError::Parse("Ed25519 key generation failed".into()))?;
        write(
            root,
            "bundle-signing.key",
            apiary_proto::pem::encode("PRIVATE KEY", &signing).as_bytes(),
            0o600,
        )?;
        let signer =
            BundleSigner::from_pkcs8(&signing).map_err(|e| PkiError::Parse(e.to_string()))?;

        let token = crate::operator_api::auth::new_token();
        store
            .insert_token(
                "admin",
                &crate::operator_api::auth::token_hash(&token),
                crate::state::now(),
            )
            .await?;
        write(root, "admin.token", format!("{token}\n").as_bytes(), 0o600)?;
        let secrets = new_secrets_key(root)?;
        write(root, MARKER, format!("{LAYOUT}\n").as_bytes(), 0o644)?;
        Ok(Self {
            root: root.to_path_buf(),
            store,
            authority,
            server,
            signer,
            secrets,
            new_admin_token: Some(token),
        })
    }

    fn reopen(root: &Path, server_names: &[String]) -> Result<Self, DataDirError> {
        let db = root.join("apiary.db");
        if !db.exists() {
            return Err(missing(root, "apiary.db"));
        }
        let store = SqliteStore::open(&db, false)?;
        let ca_cert = read_text(root, "ca.crt")?;
        let ca_key = read_text(root, "ca.key")?;
        let mut authority =
            Authority::load(&ca_cert, &ca_key).map_err(|e| unreadable(root, "ca.crt/ca.key", e))?;
        // During a CA rotation: the CA devices are moving to, or the one they are leaving.
        let mut others = Vec::new();
        for file in [
            crate::ca_rotation::NEXT_CERT,
            crate::ca_rotation::PREVIOUS_CERT,
        ] {
            match fs::read_to_string(root.join(file)) {
                Ok(pem) => others.push(pem),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(unreadable(root, file, e)),
            }
        }
        authority.also_trust(&others);

        let signing_pem = read_text(root, "bundle-signing.key")?;
        let signing = PrivatePkcs8KeyDer::from_pem_slice(signing_pem.as_bytes())
            .map_err(|e| unreadable(root, "bundle-signing.key", e))?;
        let signer = BundleSigner::from_pkcs8(signing.secret_pkcs8_der())
            .map_err(|e| unreadable(root, "bundle-signing.key", e))?;

        let layout: u32 = read_text(root, MARKER)?.trim().parse().unwrap_or(1);
        let secrets = match fs::read(root.join("secrets.key")) {
            Ok(key) => SecretBox::from_key(&key).map_err(|e| unreadable(root, "secrets.key", e))?,
            // Dirs from before secrets existed get their key now; a newer dir without one is damaged.
            Err(e) if e.kind() == io::ErrorKind::NotFound && layout < 2 => {
                let secrets = new_secrets_key(root)?;
                write(root, MARKER, format!("{LAYOUT}\n").as_bytes(), 0o644)?;
                tracing::info!("created secrets.key for data dir layout {LAYOUT}");
                secrets
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(missing(root, "secrets.key"));
            }
            Err(e) => return Err(unreadable(root, "secrets.key", e)),
        };
        let server = match (read_text(root, "server.crt"), read_text(root, "server.key")) {
            // A P-384 server key (data dirs from before P-256) is replaced: devices trust the
            // CA, not the certificate, and the new key signs every handshake 28 times faster.
            (Ok(cert_pem), Ok(key_pem))
                if crate::pki::covers(&cert_pem, server_names, crate::pki::SERVER_RENEW_DAYS)?
                    && crate::pki::is_p256_key(&key_pem) =>
            {
                CertAndKey { cert_pem, key_pem }
            }
            _ => {
                let server = issue_server(root, &authority, server_names)?;
                tracing::info!(
                    "issued a new device-API server certificate (P-256) for {}",
                    server_names.join(", ")
                );
                server
            }
        };
        Ok(Self {
            root: root.to_path_buf(),
            store,
            authority,
            server,
            signer,
            secrets,
            new_admin_token: None,
        })
    }
}

/// Creates and stores a new key for sealing secrets.
fn new_secrets_key(root: &Path) -> Result<SecretBox, DataDirError> {
    let key = SecretBox::generate_key();
    write(root, "secrets.key", &key, 0o600)?;
    Ok(SecretBox::from_key(&key).expect("a generated key has the right length"))
}

/// Issues the device-API server certificate and stores it with its key.
fn issue_server(
    root: &Path,
    authority: &Authority,
    names: &[String],
) -> Result<CertAndKey, DataDirError> {
    let server = authority.issue_server(names)?;
    write(root, "server.crt", server.cert_pem.as_bytes(), 0o644)?;
    write(root, "server.key", server.key_pem.as_bytes(), 0o600)?;
    Ok(server)
}

fn missing(dir: &Path, file: &str) -> DataDirError {
    DataDirError::Missing {
        dir: dir.to_path_buf(),
        file: file.to_string(),
    }
}

fn unreadable(dir: &Path, file: &str, e: impl std::fmt::Display) -> DataDirError {
    DataDirError::Unreadable {
        dir: dir.to_path_buf(),
        file: file.to_string(),
        message: e.to_string(),
    }
}

fn read_text(dir: &Path, file: &str) -> Result<String, DataDirError> {
    match fs::read_to_string(dir.join(file)) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(missing(dir, file)),
        Err(e) => Err(unreadable(dir, file, e)),
    }
}

/// Replaces `file` in `dir` through a temporary file, a rename and a sync of the directory.
pub(crate) fn write(dir: &Path, file: &str, bytes: &[u8], mode: u32) -> Result<(), DataDirError> {
    use std::io::Write;
    let path = dir.join(file);
    let tmp = dir.join(format!(".{file}.tmp"));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        fs::File::open(dir)?.sync_all()
    })();
    result.map_err(|source| DataDirError::Write { path, source })
}

/// A store handle usable as the trait object the server shares.
impl DataDir {
    pub fn shared_store(&self) -> std::sync::Arc<dyn Store> {
        std::sync::Arc::new(self.store.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["localhost".into(), "127.0.0.1".into()]
    }

    #[tokio::test]
    async fn initialises_once_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let first = DataDir::open(&root, &names()).await.unwrap();
        assert!(first.new_admin_token.is_some());
        let ca = first.authority.cert_pem.clone();
        let key = first.signer.public_key_hex();
        drop(first);
        let again = DataDir::open(&root, &names()).await.unwrap();
        assert!(again.new_admin_token.is_none());
        assert_eq!(again.authority.cert_pem, ca);
        assert_eq!(again.signer.public_key_hex(), key);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(root.join("admin.token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[tokio::test]
    async fn damaged_or_half_initialised_dirs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        drop(DataDir::open(&root, &names()).await.unwrap());
        fs::remove_file(root.join("bundle-signing.key")).unwrap();
        let err = DataDir::open(&root, &names())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("bundle-signing.key is missing"), "{err}");

        fs::write(root.join("bundle-signing.key"), "garbage").unwrap();
        let err = DataDir::open(&root, &names())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("bundle-signing.key is unreadable"), "{err}");

        let half = dir.path().join("half");
        fs::create_dir(&half).unwrap();
        fs::write(half.join("apiary.db"), b"").unwrap();
        assert!(matches!(
            DataDir::open(&half, &names()).await,
            Err(DataDirError::HalfInitialised(_))
        ));
    }

    #[tokio::test]
    async fn an_older_layout_gets_its_secrets_key_and_a_newer_one_must_have_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        drop(DataDir::open(&root, &names()).await.unwrap());
        let key = fs::read(root.join("secrets.key")).unwrap();
        assert_eq!(key.len(), 32);
        fs::remove_file(root.join("secrets.key")).unwrap();
        let err = DataDir::open(&root, &names())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("secrets.key is missing"), "{err}");

        fs::write(root.join(MARKER), "1\n").unwrap();
        drop(DataDir::open(&root, &names()).await.unwrap());
        assert_eq!(fs::read(root.join("secrets.key")).unwrap().len(), 32);
        assert_eq!(fs::read_to_string(root.join(MARKER)).unwrap(), "2\n");
    }

    #[tokio::test]
    async fn new_server_names_get_a_new_certificate_from_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let first = DataDir::open(&root, &names()).await.unwrap();
        let (ca, cert) = (
            first.authority.cert_pem.clone(),
            first.server.cert_pem.clone(),
        );
        drop(first);
        let mut more = names();
        more.push("apiary.example".into());
        let again = DataDir::open(&root, &more).await.unwrap();
        assert_eq!(again.authority.cert_pem, ca);
        assert_ne!(again.server.cert_pem, cert);
    }

    #[tokio::test]
    async fn a_p384_server_key_from_before_is_replaced_under_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let first = DataDir::open(&root, &names()).await.unwrap();
        let ca = first.authority.cert_pem.clone();
        drop(first);
        let old = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        std::fs::write(root.join("server.key"), old.serialize_pem()).unwrap();
        let again = DataDir::open(&root, &names()).await.unwrap();
        assert_eq!(again.authority.cert_pem, ca);
        assert!(crate::pki::is_p256_key(&again.server.key_pem));
        let on_disk = std::fs::read_to_string(root.join("server.key")).unwrap();
        assert_eq!(on_disk, again.server.key_pem);
    }
}
