//! TLS for `sslmode=require`, `verify-ca` and `verify-full`, through rustls (ring), trusting the
//! platform's root certificates or the CA certificates of `sslrootcert`.
//!
//! Why rustls rather than native-tls: the addon ships prebuilt binaries, and linking the system's
//! OpenSSL would tie each binary to one libssl soname. Why not tokio-postgres-rustls: it pulls in an
//! X.509 parser and SHA-2 for SCRAM channel binding, which we do not need; the glue is a few lines.
//!
//! Unlike libpq's `require` (encrypt, trust any certificate), `require` here verifies the server
//! certificate against the trusted roots and the host name, exactly like `verify-full`: a depot holds
//! user data, and an unverified connection is open to an active attacker. `verify-ca` checks the
//! chain (signature, validity, key usage) but not the host name, like libpq's.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::Socket;

use crate::StoreError;

/// Where the trusted CA certificates come from.
pub(crate) enum Roots<'a> {
    /// The platform's store (libpq's `sslrootcert=system`, and our default).
    System,
    /// A PEM file of one or more CA certificates (`sslrootcert=/path/to/ca.pem`).
    File(&'a Path),
}

/// Makes one TLS connector per connection attempt.
#[derive(Clone)]
pub(crate) struct RustlsMakeTls(Arc<rustls::ClientConfig>);

impl RustlsMakeTls {
    /// A connector trusting `roots`; `check_host` is false only for `sslmode=verify-ca`. `mode` names
    /// the sslmode in error messages.
    pub(crate) fn new(roots: Roots<'_>, check_host: bool, mode: &str) -> Result<RustlsMakeTls, StoreError> {
        let roots = match roots {
            Roots::System => system_roots(mode)?,
            Roots::File(path) => file_roots(path)?,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Unavailable(format!("TLS setup failed: {e}")))?;
        let config = if check_host {
            builder.with_root_certificates(roots).with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly { roots: Arc::new(roots), provider }))
                .with_no_client_auth()
        };
        Ok(RustlsMakeTls(Arc::new(config)))
    }
}

fn system_roots(mode: &str) -> Result<RootCertStore, StoreError> {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(StoreError::Unavailable(format!(
            "sslmode={mode}: no root certificates found on this system (set sslrootcert=/path/to/ca.pem)"
        )));
    }
    Ok(roots)
}

/// The CA certificates of a PEM file. A missing, unreadable or certificate-less file, or one with a
/// certificate rustls cannot use as a trust anchor, is an error naming the path.
fn file_roots(path: &Path) -> Result<RootCertStore, StoreError> {
    let bad = |why: String| StoreError::InvalidArgument(format!("sslrootcert {}: {why}", path.display()));
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read the file ({e})")))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(format!("not a valid PEM file ({e})")))?;
        roots.add(cert).map_err(|e| bad(format!("unusable CA certificate ({e})")))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificates in the file (expected PEM: -----BEGIN CERTIFICATE-----)".into()));
    }
    Ok(roots)
}

/// `sslmode=verify-ca`: the chain must lead to a trusted root (signatures, validity dates, key
/// usage), but the certificate need not name the host. Handshake signatures are checked as usual.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Whether `e` (a connection error's cause) is the server's certificate failing verification, a
/// lasting condition that retrying cannot fix.
pub(crate) fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let rustls_error = match e.downcast_ref::<io::Error>() {
        Some(io) => io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        None => e.downcast_ref::<rustls::Error>(),
    };
    matches!(rustls_error, Some(rustls::Error::InvalidCertificate(_)))
}

impl MakeTlsConnect<Socket> for RustlsMakeTls {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, io::Error> {
        let name = ServerName::try_from(domain.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsConnect { config: self.0.clone(), name })
    }
}

/// Connects one socket.
pub(crate) struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let connector = tokio_rustls::TlsConnector::from(self.config);
            Ok(RustlsStream(connector.connect(self.name, stream).await?))
        })
    }
}

/// An encrypted connection to the server.
pub(crate) struct RustlsStream(tokio_rustls::client::TlsStream<Socket>);

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM without channel binding (the server must not require SCRAM-SHA-256-PLUS).
        ChannelBinding::none()
    }
}
