//! TLS for SIP (RFC 3261 §26.2.1, §26.3.1): the server side of the
//! `sip.tls_bind` listener and the client side toward the trunk. Once the
//! handshake is done a TLS stream is framed exactly like TCP (§18.3), so
//! `transport.rs` serves both; this module only builds the rustls
//! configurations, from files, with errors that name the file and the fix.
//!
//! ring is the crypto provider (see docs/decisions.md). Private keys are
//! read into rustls and never formatted: no error or log line carries them.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Where the listener's certificate and key come from; the same pair is
/// offered as our client certificate to a trunk that asks for one
/// (mutual TLS, as Microsoft direct routing requires).
#[derive(Debug, Clone)]
pub struct Identity {
    /// PEM: our certificate first, then any intermediates (RFC 8446 §4.4.2).
    pub certificate: PathBuf,
    /// PEM: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) private key.
    pub private_key: PathBuf,
}

/// How the trunk's certificate is checked (RFC 5922 §7: the name we meant
/// to reach must be in its subjectAltName).
#[derive(Debug, Clone)]
pub struct TrunkVerification {
    /// PEM bundle of trust anchors; `None` uses the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The name to find in the trunk's certificate. An IP address is
    /// checked against the certificate's IP SANs.
    pub server_name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key}: cannot read {path}: {reason}; check the path (relative paths start at the config file's folder) and that tpswitch may read it")]
    Read {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{key}: {path} is not valid PEM ({reason}); give a PEM file with \"-----BEGIN ...-----\" sections, e.g. from `openssl x509 -in cert.der -inform der -out cert.pem`")]
    BadPem {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{key}: {path} holds no {what}; {fix}")]
    Missing {
        key: &'static str,
        path: PathBuf,
        what: &'static str,
        fix: &'static str,
    },
    #[error("sip.tls_private_key: {key} does not belong to the certificate in {cert}; give the key the certificate was issued for (compare `openssl x509 -noout -pubkey -in CERT` with `openssl pkey -pubout -in KEY`)")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("sip.tls_private_key: {key} cannot be used with the certificate in {cert}: {reason}; use an RSA, ECDSA (P-256/P-384) or Ed25519 key")]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("trunk.tls_ca_file: {path}: {reason}; give a PEM bundle of CA certificates")]
    BadCa { path: PathBuf, reason: String },
    #[error("the system has no trusted root certificates ({reason}); install Debian's ca-certificates or set trunk.tls_ca_file")]
    NoSystemRoots { reason: String },
    #[error("trunk.tls_server_name: {0:?} is neither a DNS name nor an IP address; write the name in the trunk's certificate, such as \"sip.carrier.example\"")]
    BadServerName(String),
    #[error("TLS: {0}")]
    Rustls(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        key,
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Our own words for a PEM error: the library's `Debug`s of raw lines are
/// not for people, and a key file's lines must never be echoed.
fn pem_reason(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed".into(),
        pem::Error::Base64Decode(_) => "a section's base64 is corrupt".into(),
        pem::Error::SectionTooLarge => "a section is too large".into(),
        pem::Error::NoItemsFound => "no PEM section".into(),
        pem::Error::Io(e) => e.to_string(),
        _ => "unreadable".into(),
    }
}

fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            key,
            path: path.to_owned(),
            reason: pem_reason(&e),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Missing {
            key,
            path: path.to_owned(),
            what: "certificate (no \"BEGIN CERTIFICATE\" section)",
            fix: "give the PEM certificate chain, our certificate first",
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    const KEY: &str = "sip.tls_private_key";
    let bytes = read(KEY, path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(k) => Ok(k),
        Err(pem::Error::NoItemsFound) => Err(TlsError::Missing {
            key: KEY,
            path: path.to_owned(),
            what: "private key (no \"BEGIN PRIVATE KEY\", \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" section)",
            fix: "give the unencrypted PEM key of sip.tls_certificate (`openssl pkey -in KEY -out key.pem` decrypts one)",
        }),
        Err(e) => Err(TlsError::BadPem {
            key: KEY,
            path: path.to_owned(),
            reason: pem_reason(&e),
        }),
    }
}

fn key_error(id: &Identity, e: rustls::Error) -> TlsError {
    match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
            cert: id.certificate.clone(),
            key: id.private_key.clone(),
        },
        other => TlsError::Unusable {
            cert: id.certificate.clone(),
            key: id.private_key.clone(),
            reason: other.to_string(),
        },
    }
}

/// The listener's configuration. rustls checks that the key belongs to the
/// certificate, so a mismatch fails here, at start, not at the first
/// handshake.
pub fn server_config(id: &Identity) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = certificates("sip.tls_certificate", &id.certificate)?;
    let key = private_key(&id.private_key)?;
    let cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        // §26.3.2.2 lets a server ask for client certificates; a trunk is
        // admitted by its address (trunk.allow), as over UDP and TCP.
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| key_error(id, e))?;
    Ok(Arc::new(cfg))
}

fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = certificates("trunk.tls_ca_file", path)?;
            let (_, bad) = store.add_parsable_certificates(certs);
            if store.is_empty() {
                return Err(TlsError::BadCa {
                    path: path.to_owned(),
                    reason: format!(
                        "none of its certificates is usable as a trust anchor ({bad} rejected)"
                    ),
                });
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                let reason = found
                    .errors
                    .first()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "none found".into());
                return Err(TlsError::NoSystemRoots { reason });
            }
        }
    }
    Ok(store)
}

/// The name rustls checks the trunk's certificate against.
pub fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    if let Ok(ip) = name.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(name.to_owned()).map_err(|_| TlsError::BadServerName(name.to_owned()))
}

/// Our side of the connection to the trunk: its certificate verified
/// against `ca_file` or the system's roots, with the host name checked
/// (RFC 5922 §7.2); our own certificate offered when we have one.
pub fn client_config(
    verify: &TrunkVerification,
    id: Option<&Identity>,
) -> Result<(Arc<ClientConfig>, ServerName<'static>), TlsError> {
    let name = server_name(&verify.server_name)?;
    let roots = roots(verify.ca_file.as_deref())?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_root_certificates(roots);
    let cfg = match id {
        Some(id) => {
            let certs = certificates("sip.tls_certificate", &id.certificate)?;
            let key = private_key(&id.private_key)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| key_error(id, e))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok((Arc::new(cfg), name))
}

#[cfg(test)]
mod tests;
