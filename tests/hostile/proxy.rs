//! Outbound HTTPS honours `HTTPS_PROXY` (reqwest's system proxy): a request
//! to a TLS server goes through a CONNECT tunnel of a small local proxy.
//!
//! The proxy lives for the whole test process on its own thread, so other
//! tests of this binary that pick up the variable still get through.

use crate::tls::private_ca_server;
use idrecon::net::tls::TlsSettings;
use idrecon::sources::http::{build_client, Auth, ErrorShape, HttpSettings, ServiceClient};
use idrecon::sources::System;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The proxy's address and the CONNECT targets it was asked for.
fn connect_proxy() -> &'static (String, Arc<Mutex<Vec<String>>>) {
    static PROXY: OnceLock<(String, Arc<Mutex<Vec<String>>>)> = OnceLock::new();
    PROXY.get_or_init(|| {
        let targets: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = targets.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while let Ok((mut client, _)) = listener.accept().await {
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        let mut head = Vec::new();
                        let mut byte = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n") {
                            if client.read(&mut byte).await.unwrap_or(0) == 0 {
                                return;
                            }
                            head.push(byte[0]);
                        }
                        let head = String::from_utf8_lossy(&head).into_owned();
                        let Some(target) = head
                            .strip_prefix("CONNECT ")
                            .and_then(|rest| rest.split_whitespace().next())
                        else {
                            let _ = client
                                .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                                .await;
                            return;
                        };
                        seen.lock().unwrap().push(target.to_string());
                        let Ok(mut upstream) = tokio::net::TcpStream::connect(
                            target.replace("localhost", "127.0.0.1"),
                        )
                        .await
                        else {
                            let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                            return;
                        };
                        let _ = client
                            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                            .await;
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    });
                }
            });
        });
        (format!("http://{addr}"), targets)
    })
}

#[tokio::test]
async fn https_goes_through_the_proxy_named_by_https_proxy() {
    let (ca_pem, port, _) = private_ca_server().await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let (proxy, targets) = connect_proxy();
    // Process-wide and never unset: the proxy tunnels for every test.
    std::env::set_var("HTTPS_PROXY", proxy);
    let settings = HttpSettings {
        tls: TlsSettings {
            ca_file: Some(ca_file),
        },
        ..crate::settings()
    };
    let api = ServiceClient::from_settings(
        System::Flow,
        build_client(System::Flow, &settings).unwrap(),
        &settings,
        ErrorShape::Flow,
    );
    let url = url::Url::parse(&format!("https://localhost:{port}/flow/users")).unwrap();
    let page: serde_json::Value = api.get_json(&url, Auth::None).await.unwrap();
    assert_eq!(page, serde_json::json!({"users": []}));
    assert!(
        targets
            .lock()
            .unwrap()
            .contains(&format!("localhost:{port}")),
        "{:?}",
        targets.lock().unwrap()
    );
}
