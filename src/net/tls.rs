//! The certificates idrecon trusts, for IFS, Flow, Graph and SMTP alike:
//! the Mozilla web roots, the operating system's trust store (where an
//! on-premises CA is usually installed), and the PEM bundle of
//! `tls.ca_file`, if set.
//!
//! A certificate failure is a configuration problem, never transient:
//! [`is_certificate_error`] lets the retry rules give up at once.

use std::path::{Path, PathBuf};

/// `[tls]` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `tls.ca_file`: extra trusted CA certificates (PEM bundle).
    pub ca_file: Option<PathBuf>,
}

/// Why the trust roots could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls.ca_file {path}: cannot read it: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("tls.ca_file {path}: {reason}")]
    Invalid { path: String, reason: String },
}

impl TlsSettings {
    /// `[tls]` of the configuration.
    pub fn from_config(cfg: &crate::config::Config) -> TlsSettings {
        TlsSettings {
            ca_file: cfg.tls.ca_file.clone(),
        }
    }

    /// The DER certificates of `tls.ca_file` (none when unset).
    pub fn extra_roots(&self) -> Result<Vec<Vec<u8>>, TlsError> {
        let Some(path) = &self.ca_file else {
            return Ok(Vec::new());
        };
        read_pem_bundle(path)
    }

    /// Adds the OS trust store and `tls.ca_file` to a reqwest builder (the
    /// web roots are built in).
    pub fn apply_to_reqwest(
        &self,
        mut builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, TlsError> {
        for der in native_roots() {
            if let Ok(cert) = reqwest::Certificate::from_der(&der) {
                builder = builder.add_root_certificate(cert);
            }
        }
        for der in self.extra_roots()? {
            let cert = reqwest::Certificate::from_der(&der).map_err(|e| self.invalid(e))?;
            builder = builder.add_root_certificate(cert);
        }
        Ok(builder)
    }

    /// lettre's TLS parameters for `domain`: web roots, OS store, `tls.ca_file`.
    pub fn lettre_parameters(
        &self,
        domain: &str,
    ) -> Result<lettre::transport::smtp::client::TlsParameters, String> {
        use lettre::transport::smtp::client::{Certificate, CertificateStore, TlsParameters};
        let mut builder = TlsParameters::builder(domain.to_string())
            .certificate_store(CertificateStore::WebpkiRoots);
        for der in native_roots() {
            if let Ok(cert) = Certificate::from_der(der) {
                builder = builder.add_root_certificate(cert);
            }
        }
        for der in self.extra_roots().map_err(|e| e.to_string())? {
            let cert = Certificate::from_der(der).map_err(|e| self.invalid(e).to_string())?;
            builder = builder.add_root_certificate(cert);
        }
        builder.build().map_err(|e| e.to_string())
    }

    fn invalid(&self, e: impl std::fmt::Display) -> TlsError {
        TlsError::Invalid {
            path: self
                .ca_file
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            reason: format!("not a usable CA certificate: {e}"),
        }
    }
}

/// The `CERTIFICATE` blocks of a PEM file, as DER.
fn read_pem_bundle(path: &Path) -> Result<Vec<Vec<u8>>, TlsError> {
    let shown = path.display().to_string();
    let text = std::fs::read(path).map_err(|source| TlsError::Read {
        path: shown.clone(),
        source,
    })?;
    let blocks = pem::parse_many(&text).map_err(|e| TlsError::Invalid {
        path: shown.clone(),
        reason: format!("not PEM: {e}"),
    })?;
    let certs: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents())
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Invalid {
            path: shown,
            reason: "holds no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// The operating system's trusted roots (none where it has none); loaded once.
fn native_roots() -> Vec<Vec<u8>> {
    static ROOTS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            if !found.errors.is_empty() {
                tracing::debug!(
                    errors = found.errors.len(),
                    "some OS trust store certificates could not be loaded"
                );
            }
            found.certs.into_iter().map(|c| c.to_vec()).collect()
        })
        .clone()
}

/// Whether an error (anywhere in its source chain) is a TLS certificate
/// failure: unknown issuer, bad name, expired, revoked.
pub fn is_certificate_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        // rustls' error sits inside an io::Error, whose `source` skips it.
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if inner.to_string().contains("certificate") {
                    return true;
                }
            }
        }
        if e.to_string().contains("invalid peer certificate") {
            return true;
        }
        current = e.source();
    }
    false
}
