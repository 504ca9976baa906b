//! TLS to PostgreSQL: a small tokio-postgres adapter over tokio-rustls
//! (ring provider), the certificate checks of each `sslmode`, SCRAM
//! channel binding, and naming what went wrong with a certificate.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use super::options::{SslMode, SslRootCert};
use super::settings::Endpoint;
use crate::error::{Error, Result};

/// Makes a TLS connector per host, as tokio-postgres asks for one.
#[derive(Clone)]
pub struct MakeTls {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for MakeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MakeTls").finish_non_exhaustive()
    }
}

impl MakeTls {
    /// The connector for `conn`'s `sslmode` and `sslrootcert`: reads the
    /// root certificates once. Unreadable or empty roots are
    /// [`Error::Config`].
    pub(super) fn new(conn: &Endpoint) -> Result<MakeTls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS set-up failed: {e}")))?;
        // libpq: `prefer` and `require` check the chain only when given a
        // root certificate; the `verify-*` modes always do.
        let check_chain = match conn.ssl_mode {
            SslMode::Disable => false,
            SslMode::Prefer | SslMode::Require => conn.ssl_root_cert.is_some(),
            SslMode::VerifyCa | SslMode::VerifyFull => true,
        };
        let builder = if check_chain {
            let roots = load_roots(conn.ssl_root_cert.as_ref(), &conn.target)?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| Error::Config(format!("TLS set-up failed: {e}")))?;
            if conn.ssl_mode == SslMode::VerifyFull {
                builder.dangerous().with_custom_certificate_verifier(webpki)
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyName(webpki)))
            }
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
        };
        Ok(MakeTls {
            config: Arc::new(builder.with_no_client_auth()),
        })
    }
}

/// The trust anchors: the PEM file of `sslrootcert`, or the system's.
fn load_roots(root: Option<&SslRootCert>, target: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match root {
        Some(SslRootCert::File(path)) => {
            let shown = path.display();
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| {
                    Error::Config(format!(
                        "sslrootcert `{shown}` cannot be read for {target}: {e}"
                    ))
                })?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| {
                    Error::Config(format!(
                        "sslrootcert `{shown}` is not a PEM file of certificates: {e}"
                    ))
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(Error::Config(format!(
                    "sslrootcert `{shown}` holds no usable CA certificate (PEM `-----BEGIN \
                     CERTIFICATE-----` blocks)"
                )));
            }
        }
        Some(SslRootCert::System) | None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(Error::Config(format!(
                    "no CA certificates found in the system's trust store{why} to check the \
                     certificate of {target}; install them (Debian: ca-certificates) or give \
                     sslrootcert=/path/to/ca.pem"
                )));
            }
        }
    }
    Ok(roots)
}

/// `verify-ca`: the chain must lead to a trusted root; any host name.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name, so a name error means
        // the chain was good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a root certificate (libpq's meaning):
/// any certificate. The handshake signatures are still checked, so the
/// server holds the key of the certificate that channel binding hashes.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A failed TLS handshake, as this adapter reports it (so that it can be
/// told apart from other connection errors).
#[derive(Debug)]
pub struct TlsFailure(io::Error);

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// No source: its message is the rustls (or I/O) error's already.
impl std::error::Error for TlsFailure {}

impl TlsFailure {
    /// The rustls error behind it, when there is one.
    fn rustls(&self) -> Option<&rustls::Error> {
        self.0.get_ref()?.downcast_ref::<rustls::Error>()
    }
}

impl<S> MakeTlsConnect<S> for MakeTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = Connect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> io::Result<Connect> {
        // Never fails here: tokio-postgres asks even when TLS is off (and
        // for socket paths, which are no server names).
        Ok(Connect {
            config: Arc::clone(&self.config),
            name: ServerName::try_from(host.to_owned()).ok(),
        })
    }
}

/// Connects one stream.
pub struct Connect {
    config: Arc<ClientConfig>,
    name: Option<ServerName<'static>>,
}

type ConnectFuture<S> =
    Pin<Box<dyn Future<Output = std::result::Result<TlsStream<S>, TlsFailure>> + Send>>;

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = TlsFailure;
    type Future = ConnectFuture<S>;

    fn connect(self, stream: S) -> ConnectFuture<S> {
        Box::pin(async move {
            let name = self.name.ok_or_else(|| {
                TlsFailure(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the host is not a valid name for TLS",
                ))
            })?;
            tokio_rustls::TlsConnector::from(self.config)
                .connect(name, stream)
                .await
                .map(TlsStream)
                .map_err(TlsFailure)
        })
    }
}

/// A TLS connection to the server.
pub struct TlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for TlsStream<S> {
    /// `tls-server-end-point` (RFC 5929): the server certificate hashed
    /// with its signature's hash (SHA-256 for MD5 and SHA-1), so that
    /// SCRAM-SHA-256-PLUS ties the password exchange to this connection.
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        let Some(cert) = session.peer_certificates().and_then(|c| c.first()) else {
            return ChannelBinding::none();
        };
        match signature_hash(cert) {
            Some(algorithm) => ChannelBinding::tls_server_end_point(
                ring::digest::digest(algorithm, cert).as_ref().to_vec(),
            ),
            None => ChannelBinding::none(),
        }
    }
}

/// The hash channel binding uses for a certificate, from its
/// `signatureAlgorithm`; `None` for algorithms without one (Ed25519,
/// RSA-PSS), as PostgreSQL itself.
fn signature_hash(cert: &[u8]) -> Option<&'static ring::digest::Algorithm> {
    use ring::digest::{SHA256, SHA384, SHA512};
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, .. }
    let (cert, _) = der(cert, 0x30)?;
    let (_, rest) = der_any(cert)?;
    let (algorithm, _) = der(rest, 0x30)?;
    let (oid, _) = der(algorithm, 0x06)?;
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    if oid == ECDSA_SHA1 {
        return Some(&SHA256);
    }
    if let Some(last) = oid.strip_prefix(RSA) {
        return match last {
            [0x04] | [0x05] | [0x0b] => Some(&SHA256), // MD5, SHA-1, SHA-256
            [0x0c] => Some(&SHA384),
            [0x0d] => Some(&SHA512),
            _ => None,
        };
    }
    match oid.strip_prefix(ECDSA_SHA2)? {
        [0x02] => Some(&SHA256),
        [0x03] => Some(&SHA384),
        [0x04] => Some(&SHA512),
        _ => None,
    }
}

/// The contents of the DER element at the start of `input` if its tag is
/// `tag`, and what follows it.
fn der(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *input.first()? != tag {
        return None;
    }
    der_any(input)
}

fn der_any(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len = input
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((input.get(header..end)?, input.get(end..)?))
}

/// Whether a connection error is a failed TLS handshake of this adapter
/// (for `prefer`'s fallback to plain).
pub(super) fn handshake_failed(e: &tokio_postgres::Error) -> bool {
    failure(e).is_some()
}

fn failure(e: &tokio_postgres::Error) -> Option<&TlsFailure> {
    std::error::Error::source(e)?.downcast_ref::<TlsFailure>()
}

/// What is wrong with TLS, when a connection failed for a TLS reason
/// that retrying cannot fix: a certificate problem, or TLS required from a
/// server without it. `None` for other failures.
pub(super) fn problem(e: &tokio_postgres::Error, conn: &Endpoint) -> Option<String> {
    let roots = match &conn.ssl_root_cert {
        Some(SslRootCert::File(path)) => format!("sslrootcert `{}`", path.display()),
        Some(SslRootCert::System) | None => "the system's trust store".to_owned(),
    };
    let mode = conn.ssl_mode.as_str();
    if let Some(failure) = failure(e) {
        let Some(rustls) = failure.rustls() else {
            if failure.0.kind() == io::ErrorKind::InvalidInput {
                return Some(format!(
                    "TLS needs a host name or IP address to check; {failure}"
                ));
            }
            return None; // I/O during the handshake: retryable.
        };
        return Some(match rustls {
            rustls::Error::InvalidCertificate(cert) => match cert {
                CertificateError::UnknownIssuer => format!(
                    "the server's certificate is not signed by a CA in {roots} (unknown \
                     issuer); give sslrootcert the CA that signed it (sslmode={mode})"
                ),
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => format!(
                    "the server's certificate is not valid for the host name connected to \
                     (sslmode=verify-full checks it): {rustls}; connect by a name the \
                     certificate lists, or use sslmode=verify-ca"
                ),
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    format!("the server's certificate has expired: {rustls}")
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    format!("the server's certificate is not valid yet: {rustls}")
                }
                _ => format!("the server's certificate was refused: {rustls}"),
            },
            other => format!("the TLS handshake failed: {other} (sslmode={mode})"),
        });
    }
    let source = std::error::Error::source(e)?;
    if source.to_string() == "server does not support TLS" {
        return Some(format!(
            "sslmode={mode} requires TLS, but the server does not offer it (its `ssl` is off, \
             or a pooler without TLS answers); enable TLS on the server, or use sslmode=prefer \
             or disable"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_short_and_long() {
        assert_eq!(
            der(&[0x30, 0x01, 0xaa, 0xbb], 0x30),
            Some((&[0xaa][..], &[0xbb][..]))
        );
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend(std::iter::repeat_n(7, 0x80));
        let (body, rest) = der(&long, 0x04).unwrap();
        assert_eq!((body.len(), rest.len()), (0x80, 0));
        assert_eq!(der(&[0x30, 0x05, 0x00], 0x30), None, "truncated");
        assert_eq!(der(&[0x31, 0x00], 0x30), None, "other tag");
    }

    #[test]
    fn signature_hashes_follow_rfc_5929() {
        // SEQUENCE { SEQUENCE {} (tbs), SEQUENCE { OID } }
        let cert = |oid: &[u8]| {
            let mut alg = vec![0x06, oid.len() as u8];
            alg.extend_from_slice(oid);
            let mut body = vec![0x30, 0x00, 0x30, alg.len() as u8];
            body.extend(alg);
            let mut out = vec![0x30, body.len() as u8];
            out.extend(body);
            out
        };
        let sha256_rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
        let sha384_ecdsa = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
        let ed25519 = [0x2b, 0x65, 0x70];
        assert_eq!(
            signature_hash(&cert(&sha256_rsa)).map(|a| a.output_len()),
            Some(32)
        );
        assert_eq!(
            signature_hash(&cert(&sha384_ecdsa)).map(|a| a.output_len()),
            Some(48)
        );
        assert!(signature_hash(&cert(&ed25519)).is_none());
    }
}
