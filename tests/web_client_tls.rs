//! The typed web client over HTTPS: against the router behind a TLS
//! listener whose certificate a CA made by the test signed.

use std::sync::Arc;

use axum::http::request::Parts;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use kv_runtime::web::{self, ApiError, Client};
use kv_runtime::{Ctx, ErrorCode, Kv, Store};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde::{Deserialize, Serialize};
use tokio_rustls::rustls;

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "tlsBanner", keys = [banner], write_role = public)]
struct Banner {
    message: String,
}

fn anyone(_: &Parts) -> std::future::Ready<Result<Ctx, ApiError>> {
    std::future::ready(Ok(Ctx::anonymous()))
}

/// A CA, and a server certificate it signed for `name`: (CA PEM, server
/// certificate PEM, server key PEM).
fn certificates(name: &str) -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), server.pem(), key.serialize_pem())
}

/// Serves `app` over TLS on a loopback port; returns the port.
async fn serve_tls(app: Router, cert_pem: &str, key_pem: &str) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                // A client refusing the certificate ends the handshake here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                    .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn the_client_speaks_https_with_the_roots_it_is_given() {
    let (ca, cert, key) = certificates("localhost");
    let store = Store::memory();
    let app = Router::new().nest(
        "/api/kv/site",
        web::router(store.table::<Banner>(), anyone).build(),
    );
    let port = serve_tls(app, &cert, &key).await;
    let base = format!("https://localhost:{port}/api/kv/site");

    let client = Client::<Banner>::new(&base)
        .unwrap()
        .with_root_certificate(ca.as_bytes())
        .unwrap();
    let row = client
        .set(
            BannerKey::Banner,
            Banner {
                message: "over TLS".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(client.get(BannerKey::Banner).await.unwrap(), Some(row));

    // Another CA's certificate is refused: no request gets through.
    let (other_ca, _, _) = certificates("localhost");
    let stranger = Client::<Banner>::new(&base)
        .unwrap()
        .with_root_certificate(other_ca.as_bytes())
        .unwrap();
    let err = stranger.get(BannerKey::Banner).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Config, "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("does not trust"), "{err}");

    // A certificate for another name is refused too.
    let (ca2, cert2, key2) = certificates("example.invalid");
    let app = Router::new().nest(
        "/api/kv/site",
        web::router(store.table::<Banner>(), anyone).build(),
    );
    let port2 = serve_tls(app, &cert2, &key2).await;
    let misnamed = Client::<Banner>::new(&format!("https://localhost:{port2}/api/kv/site"))
        .unwrap()
        .with_root_certificate(ca2.as_bytes())
        .unwrap();
    let err = misnamed.get(BannerKey::Banner).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Config, "{err}");
}

#[test]
fn bad_roots_and_schemes_are_config_errors() {
    let err = Client::<Banner>::new("ftp://localhost/x").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Config);
    let client = Client::<Banner>::new("https://localhost/x").unwrap();
    let err = client
        .with_root_certificate(b"not a certificate")
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Config, "{err}");
}
