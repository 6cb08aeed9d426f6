//! The backend's certificate authority: the device CA, the device-API server certificate,
//! and device certificates issued for enrolled public keys.
//!
//! New keys are ECDSA P-256: every full device handshake makes three ECDSA operations on the
//! backend (its CertificateVerify, the device's, and the CA signature on the device's
//! certificate), and on P-384 they took 2.5 ms against 0.14 ms. Devices enrolled with P-384
//! keys keep them; a data dir created before keeps its P-384 CA (see docs/security.md).

use apiary_proto::signed::DeviceCurve;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384,
    PublicKeyData, SignatureAlgorithm,
};
use time::{Duration, OffsetDateTime};

/// Why a certificate operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("device public key is not an uncompressed P-256 or P-384 point")]
    BadDeviceKey,
    #[error("certificate cannot be parsed: {0}")]
    Parse(String),
}

/// A certificate and its private key, both PEM.
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The CA that signs the server certificate and every device certificate.
pub struct Authority {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    /// How long a device certificate is valid, and how long before its end the device is
    /// asked to renew it (seconds).
    pub device_lifetime: i64,
    pub device_renew_before: i64,
    /// Every CA a device may hold a certificate from and must trust (PEM): this one, and
    /// during a rotation the next or the previous one (`ca_rotation`).
    pub trust_pem: String,
    /// SHA-256 (hex) of [`Authority::trust_pem`], against which devices say what they hold.
    pub trust_hash: String,
    /// This CA's subject (DER), the issuer of every certificate it signs.
    subject: Vec<u8>,
}

/// A device certificate's default lifetime: 10 years.
pub const DEVICE_LIFETIME: i64 = 10 * 365 * 86400;

impl Authority {
    /// Creates a new self-signed CA, valid for 20 years.
    pub fn generate() -> Result<CertAndKey, PkiError> {
        Self::generate_named("Apiary device CA")
    }

    /// Like [`Authority::generate`], with its own common name (each CA of a rotation has
    /// its own, so certificates tell by their issuer which one signed them).
    pub fn generate_named(common_name: &str) -> Result<CertAndKey, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(365 * 20);
        let cert = params.self_signed(&key)?;
        Ok(CertAndKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Loads the CA from its PEM certificate and key.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        let subject = subject_of(cert_pem)?;
        Ok(Self {
            cert_pem: cert_pem.to_string(),
            issuer,
            trust_pem: cert_pem.to_string(),
            trust_hash: apiary_proto::digest::sha256_hex(cert_pem.as_bytes()),
            subject,
            device_lifetime: DEVICE_LIFETIME,
            device_renew_before: DEVICE_LIFETIME / 3,
        })
    }

    /// Issues the device-API server certificate for `names` (DNS names or IP addresses),
    /// valid from [`SERVER_NOT_BEFORE`] for [`SERVER_DAYS`]: a device whose clock starts at
    /// its agent's build time, or runs up to two years ahead, still accepts it.
    pub fn issue_server(&self, names: &[String]) -> Result<CertAndKey, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name = name("Apiary device API");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut params, SERVER_DAYS);
        params.not_before = OffsetDateTime::from_unix_timestamp(SERVER_NOT_BEFORE)
            .expect("a fixed, valid timestamp");
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertAndKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a client certificate naming `device_id` for the device's raw P-256 or P-384
    /// public key.
    pub fn issue_device(&self, device_id: &str, public_key: &[u8]) -> Result<String, PkiError> {
        let algorithm = match DeviceCurve::of(public_key).ok_or(PkiError::BadDeviceKey)? {
            DeviceCurve::P256 => &PKCS_ECDSA_P256_SHA256,
            DeviceCurve::P384 => &PKCS_ECDSA_P384_SHA384,
        };
        let mut params = CertificateParams::default();
        params.distinguished_name = name(device_id);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut params, 0);
        params.not_after = OffsetDateTime::now_utc() + Duration::seconds(self.device_lifetime);
        let cert = params.signed_by(&RawDeviceKey(public_key, algorithm), &self.issuer)?;
        Ok(cert.pem())
    }
}

/// Where every device-API server certificate's validity starts (2020-01-01): before any
/// agent's build, so a device without a clock (its floor is its build time) accepts it.
/// The start protects nothing here; the end is what limits an old key.
pub const SERVER_NOT_BEFORE: i64 = 1_577_836_800;
/// How long a server certificate is valid from its issue (10 years).
pub const SERVER_DAYS: i64 = 3650;
/// The server certificate is re-issued once fewer days than this remain (2 years), so a
/// device clock up to that far ahead never finds it expired.
pub const SERVER_RENEW_DAYS: i64 = 730;

impl Authority {
    /// True when a device certificate is due for renewal at `now`: it ends within the
    /// renewal window, or another CA (the previous one of a rotation) signed it.
    pub fn renewal_due(&self, peer: &PeerCertificate, now: i64) -> bool {
        peer.not_after - now < self.device_renew_before || peer.issuer != self.subject
    }

    /// Trusts `others` (PEM, the next or previous CA of a rotation) besides this CA.
    pub fn also_trust(&mut self, others: &[String]) {
        for other in others {
            self.trust_pem.push_str(other);
        }
        self.trust_hash = apiary_proto::digest::sha256_hex(self.trust_pem.as_bytes());
    }
}

fn subject_of(cert_pem: &str) -> Result<Vec<u8>, PkiError> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| PkiError::Parse(e.to_string()))?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(&der).map_err(|e| PkiError::Parse(e.to_string()))?;
    Ok(cert.subject().as_raw().to_vec())
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    let mut serial = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
        .expect("the system random source is available");
    serial[0] &= 0x7f;
    params.serial_number = Some(serial.to_vec().into());
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

struct RawDeviceKey<'a>(&'a [u8], &'static SignatureAlgorithm);

impl PublicKeyData for RawDeviceKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.1
    }
}

/// True when a PEM private key is on P-256 (the device-API server key is re-issued when not).
pub fn is_p256_key(key_pem: &str) -> bool {
    KeyPair::from_pem(key_pem).is_ok_and(|k| k.algorithm() == &PKCS_ECDSA_P256_SHA256)
}

/// What the backend learns from a presented client certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The device id derived from the certificate's public key.
    pub device_id: String,
    /// SHA-256 of the certificate DER, matched against the certificate issued at approval.
    pub fingerprint: String,
    /// The end of its validity (Unix seconds).
    pub not_after: i64,
    /// Its issuer (DER): which CA signed it.
    pub issuer: Vec<u8>,
}

impl PeerCertificate {
    /// Reads a DER client certificate (already verified against the CA by rustls).
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| PkiError::Parse(e.to_string()))?;
        let public_key = &cert.tbs_certificate.subject_pki.subject_public_key.data;
        Ok(Self {
            device_id: apiary_proto::digest::device_id(public_key),
            fingerprint: apiary_proto::digest::sha256_hex(der),
            not_after: cert.validity().not_after.timestamp(),
            issuer: cert.issuer().as_raw().to_vec(),
        })
    }
}

/// The SHA-256 fingerprint of the first certificate in a PEM document.
pub fn pem_fingerprint(pem: &str) -> Result<String, PkiError> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let der = CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| PkiError::Parse(e.to_string()))?;
    Ok(apiary_proto::digest::sha256_hex(&der))
}

/// True when the certificate names every one of `names`, is valid from [`SERVER_NOT_BEFORE`]
/// on, and for `days` more days.
pub fn covers(cert_pem: &str, names: &[String], days: i64) -> Result<bool, PkiError> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    use x509_parser::extensions::GeneralName;
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| PkiError::Parse(e.to_string()))?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(&der).map_err(|e| PkiError::Parse(e.to_string()))?;
    let horizon = OffsetDateTime::now_utc() + Duration::days(days);
    if cert.validity().not_after.timestamp() < horizon.unix_timestamp() {
        return Ok(false);
    }
    // Issued before validity started at SERVER_NOT_BEFORE: clockless devices refuse it.
    if cert.validity().not_before.timestamp() > SERVER_NOT_BEFORE {
        return Ok(false);
    }
    let mut have = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => have.push(d.to_string()),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => have.push(
                        std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*ip).expect("length checked"))
                            .to_string(),
                    ),
                    16 => have.push(
                        std::net::Ipv6Addr::from(
                            <[u8; 16]>::try_from(*ip).expect("length checked"),
                        )
                        .to_string(),
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok(names
        .iter()
        .all(|n| have.iter().any(|h| h.eq_ignore_ascii_case(n))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use apiary_proto::signed::DeviceKey;

    #[test]
    fn issues_device_certificates_that_name_the_key_on_either_curve() {
        let ca = Authority::generate().unwrap();
        assert!(is_p256_key(&ca.key_pem), "new CAs are P-256");
        let authority = Authority::load(&ca.cert_pem, &ca.key_pem).unwrap();
        for pkcs8 in [
            DeviceKey::generate_pkcs8().unwrap(),
            DeviceKey::generate_legacy_p384_pkcs8().unwrap(),
        ] {
            let key = DeviceKey::from_pkcs8(&pkcs8).unwrap();
            let id = apiary_proto::digest::device_id(key.public_key());
            let pem = authority.issue_device(&id, key.public_key()).unwrap();

            use rustls_pki_types::{CertificateDer, pem::PemObject};
            let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
            let peer = PeerCertificate::from_der(&der).unwrap();
            assert_eq!(peer.device_id, id);
            assert_eq!(peer.fingerprint, pem_fingerprint(&pem).unwrap());
        }
    }

    #[test]
    fn server_certificate_covers_its_names_only() {
        let ca = Authority::generate().unwrap();
        let authority = Authority::load(&ca.cert_pem, &ca.key_pem).unwrap();
        let names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        let server = authority.issue_server(&names).unwrap();
        assert!(covers(&server.cert_pem, &names, 30).unwrap());
        assert!(!covers(&server.cert_pem, &["apiary.example".to_string()], 30).unwrap());
        assert!(
            !covers(&server.cert_pem, &names, 10_000).unwrap(),
            "expires within 10,000 days"
        );
    }

    #[test]
    fn refuses_keys_that_are_not_p256_or_p384_points() {
        let ca = Authority::generate().unwrap();
        let authority = Authority::load(&ca.cert_pem, &ca.key_pem).unwrap();
        assert!(matches!(
            authority.issue_device("x", &[4u8; 10]),
            Err(PkiError::BadDeviceKey)
        ));
    }
}
