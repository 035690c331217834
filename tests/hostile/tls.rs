//! TLS trust: a server whose certificate comes from a private CA (made
//! here with rcgen) is trusted once `tls.ca_file` names that CA, and
//! refused otherwise, at once: a certificate failure is not retried.

use crate::settings;
use idrecon::net::tls::TlsSettings;
use idrecon::sources::http::{build_client, Auth, ErrorShape, HttpSettings, ServiceClient};
use idrecon::sources::{SourceErrorKind, System};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

/// A private CA (PEM) and a TLS server on 127.0.0.1:0 whose certificate
/// for `localhost` it signed; the server answers every request with a
/// small JSON body and counts the connections it accepted.
pub async fn private_ca_server() -> (String, u16, Arc<AtomicUsize>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "idrecon test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let body = r#"{"users":[]}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (ca_cert.pem(), port, accepted)
}

fn client(settings: &HttpSettings) -> ServiceClient {
    ServiceClient::from_settings(
        System::Flow,
        build_client(System::Flow, settings).unwrap(),
        settings,
        ErrorShape::Flow,
    )
}

#[tokio::test]
async fn a_private_ca_in_tls_ca_file_is_trusted() {
    let (ca_pem, port, _) = private_ca_server().await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let settings = HttpSettings {
        tls: TlsSettings {
            ca_file: Some(ca_file),
        },
        ..settings()
    };
    let url = url::Url::parse(&format!("https://localhost:{port}/flow/users")).unwrap();
    let page: serde_json::Value = client(&settings).get_json(&url, Auth::None).await.unwrap();
    assert_eq!(page, serde_json::json!({"users": []}));
}

#[tokio::test]
async fn an_unknown_ca_fails_at_once_and_names_the_setting() {
    let (_, port, accepted) = private_ca_server().await;
    let url = url::Url::parse(&format!("https://localhost:{port}/flow/users")).unwrap();
    let err = client(&settings())
        .get_json::<serde_json::Value>(&url, Auth::None)
        .await
        .unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Transport);
    let text = err.to_string();
    assert!(
        text.contains("TLS certificate of localhost is not trusted"),
        "{text}"
    );
    assert!(text.contains("tls.ca_file"), "{text}");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "a certificate failure was retried"
    );
}

#[test]
fn a_ca_file_without_certificates_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, "not a certificate").unwrap();
    let settings = HttpSettings {
        tls: TlsSettings {
            ca_file: Some(ca_file),
        },
        ..HttpSettings::default()
    };
    let err = build_client(System::Ifs, &settings).unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Config);
    assert!(err.to_string().contains("tls.ca_file"), "{err}");
}

#[tokio::test]
async fn tls_ca_file_in_the_config_reaches_the_connectors() {
    use idrecon::config::Config;
    use idrecon::sources::live::LiveSources;
    use idrecon::sources::Sources;

    let (ca_pem, port, _) = private_ca_server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca_pem).unwrap();
    let text = format!(
        r#"
[store]
url = "sqlite://{db}"
[azure]
tenant_id = "contoso.onmicrosoft.com"
client_id = "app-id"
client_secret = "azure-secret"
[ifs]
url = "https://ifs.invalid"
issuer_url = "https://ifs.invalid/auth/realms/prod"
client_id = "ifs-client"
client_secret = "ifs-secret"
users_path = "Users"
directory_id_field = "WebUser"
[flow]
source = "http"
url = "https://localhost:{port}/flow"
username = "svc_idrecon"
password = "flow-password"
[report]
send = "never"
[tls]
ca_file = "ca.pem"
"#,
        db = dir.path().join("idrecon.db").display(),
    );
    let cfg = Config::from_toml_str(&text, &Default::default(), dir.path()).unwrap();
    let sources = LiveSources::with_settings(&cfg, &settings()).unwrap();
    assert!(sources.fetch_flow().await.unwrap().is_empty());
}
