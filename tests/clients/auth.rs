//! OAuth client credentials against a mock Azure login and a mock IFS IAM:
//! secret and certificate flows (the assertion is verified against the
//! certificate's public key), caching, refresh before expiry, invalidation,
//! shared refresh, discovery, and errors that never leak the secret.

use crate::clients_support;

use base64::Engine as _;
use clients_support::*;
use idrecon::auth::{AccessTokenSource, ClientCredentials};
use idrecon::config::AzureCredential;
use idrecon::sources::{SourceErrorKind, System};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// An RSA key + self-signed certificate, generated once per test binary.
struct TestCert {
    /// PEM: private key (PKCS#8) followed by the certificate.
    pem: String,
    der: Vec<u8>,
}

fn test_cert() -> &'static TestCert {
    static CERT: OnceLock<TestCert> = OnceLock::new();
    CERT.get_or_init(|| {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let key_pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let key_pair = rcgen::KeyPair::from_pem(&key_pem).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["idrecon-test".to_string()])
            .unwrap()
            .self_signed(&key_pair)
            .unwrap();
        TestCert {
            pem: format!("{}{}", key_pem.as_str(), cert.pem()),
            der: cert.der().to_vec(),
        }
    })
}

#[derive(serde::Deserialize, Debug)]
struct AssertionClaims {
    aud: String,
    iss: String,
    sub: String,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

/// Checks a client assertion the way Azure does; `Err` names what is wrong.
fn verify_assertion(
    assertion: &str,
    cert_der: &[u8],
    token_url: &str,
) -> Result<AssertionClaims, String> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|e| format!("header: {e}"))?;
    // PS256 with x5t#S256: one of the two forms MSAL sends.
    if header.alg != Algorithm::PS256 {
        return Err(format!("alg {:?}", header.alg));
    }
    let expected_thumb =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(cert_der));
    if header.x5t_s256.as_deref() != Some(expected_thumb.as_str()) {
        return Err(format!(
            "x5t#S256 {:?} != {expected_thumb}",
            header.x5t_s256
        ));
    }
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| format!("cert: {e}"))?;
    let public_key =
        DecodingKey::from_rsa_der(&cert.tbs_certificate.subject_pki.subject_public_key.data);
    let mut validation = Validation::new(Algorithm::PS256);
    validation.set_audience(&[token_url]);
    validation.set_issuer(&[CLIENT_ID]);
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
    validation.validate_nbf = true;
    let data = jsonwebtoken::decode::<AssertionClaims>(assertion, &public_key, &validation)
        .map_err(|e| format!("signature/claims: {e}"))?;
    let claims = data.claims;
    if claims.sub != CLIENT_ID {
        return Err(format!("sub {}", claims.sub));
    }
    if claims.exp > claims.iat + 600 || claims.nbf > claims.iat {
        return Err(format!(
            "lifetime iat={} nbf={} exp={}",
            claims.iat, claims.nbf, claims.exp
        ));
    }
    uuid::Uuid::parse_str(&claims.jti).map_err(|e| format!("jti: {e}"))?;
    Ok(claims)
}

/// A mock Azure login that issues `tok-1`, `tok-2`, … and checks the form.
async fn azure_login(expires_in: u64, delay: Duration) -> (Mock, Arc<AtomicUsize>) {
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    let mock = Mock::start(move |r| {
        let f = r.form();
        let ok = r.method == "POST"
            && r.path == azure_token_path()
            && f.get("grant_type").map(String::as_str) == Some("client_credentials")
            && f.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && f.get("client_secret").map(String::as_str) == Some(SECRET)
            && f.get("scope").is_some_and(|s| s.ends_with("/.default"));
        if !ok {
            return Reply::json(400, serde_json::json!({"error": "invalid_request", "error_description": "AADSTS900144: bad request"}));
        }
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        token_reply(&format!("tok-{n}"), expires_in).delayed(delay)
    })
    .await;
    (mock, issued)
}

#[tokio::test]
async fn secret_flow_posts_the_form_and_caches_the_token() {
    let (mock, issued) = azure_login(3599, Duration::ZERO).await;
    let cc = ClientCredentials::azure(&azure_config(&mock, secret()), reqwest::Client::new())
        .unwrap()
        .with_retry(fast_retry());
    let first = cc.access_token().await.unwrap();
    let second = cc.access_token().await.unwrap();
    assert_eq!(first.expose_secret(), "tok-1");
    assert_eq!(second.expose_secret(), "tok-1", "cached token reused");
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    let form = mock.hits("/login")[0].form();
    // The scope follows graph_url's origin (here the mock).
    assert_eq!(
        form["scope"],
        format!("{}/.default", mock.base.origin().ascii_serialization())
    );
}

#[tokio::test]
async fn token_is_refreshed_before_it_expires() {
    // 2 s lifetime: refreshed after half of it.
    let (mock, issued) = azure_login(2, Duration::ZERO).await;
    let cc =
        ClientCredentials::azure(&azure_config(&mock, secret()), reqwest::Client::new()).unwrap();
    assert_eq!(cc.access_token().await.unwrap().expose_secret(), "tok-1");
    assert_eq!(cc.access_token().await.unwrap().expose_secret(), "tok-1");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(cc.access_token().await.unwrap().expose_secret(), "tok-2");
    assert_eq!(issued.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn invalidate_forces_a_new_token() {
    let (mock, issued) = azure_login(3599, Duration::ZERO).await;
    let cc =
        ClientCredentials::azure(&azure_config(&mock, secret()), reqwest::Client::new()).unwrap();
    assert_eq!(cc.access_token().await.unwrap().expose_secret(), "tok-1");
    cc.invalidate().await;
    assert_eq!(cc.access_token().await.unwrap().expose_secret(), "tok-2");
    assert_eq!(issued.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let (mock, issued) = azure_login(3599, Duration::from_millis(200)).await;
    let cc = Arc::new(
        ClientCredentials::azure(&azure_config(&mock, secret()), reqwest::Client::new()).unwrap(),
    );
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let cc = cc.clone();
            tokio::spawn(
                async move { cc.access_token().await.unwrap().expose_secret().to_string() },
            )
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), "tok-1");
    }
    assert_eq!(issued.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn certificate_flow_sends_a_verifiable_assertion() {
    let cert = test_cert();
    let dir = tempfile::tempdir().unwrap();
    let pem_path = dir.path().join("app.pem");
    std::fs::write(&pem_path, &cert.pem).unwrap();

    let jtis = Arc::new(Mutex::new(Vec::new()));
    let seen = jtis.clone();
    let assertions = Arc::new(Mutex::new(Vec::<String>::new()));
    let raw = assertions.clone();
    let base = Arc::new(OnceLock::<String>::new());
    let base_for_mock = base.clone();
    let mock = Mock::start(move |r| {
        let f = r.form();
        let token_url = format!("{}{}", base_for_mock.get().unwrap(), azure_token_path());
        if f.contains_key("client_secret")
            || f.get("client_assertion_type").map(String::as_str)
                != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return Reply::json(400, serde_json::json!({"error": "invalid_request"}));
        }
        raw.lock().unwrap().push(f.get("client_assertion").cloned().unwrap_or_default());
        match verify_assertion(f.get("client_assertion").map(String::as_str).unwrap_or(""), &cert.der, &token_url) {
            Ok(claims) => {
                assert_eq!(claims.aud, token_url);
                assert_eq!(claims.iss, CLIENT_ID);
                seen.lock().unwrap().push(claims.jti);
                token_reply("cert-token", 3599)
            }
            Err(why) => Reply::json(
                401,
                serde_json::json!({"error": "invalid_client", "error_description": format!("AADSTS700027: {why}")}),
            ),
        }
    })
    .await;
    base.set(mock.base.as_str().trim_end_matches('/').to_string())
        .unwrap();

    let cfg = azure_config(&mock, AzureCredential::Certificate(pem_path));
    let cc = ClientCredentials::azure(&cfg, reqwest::Client::new()).unwrap();
    assert_eq!(
        cc.access_token().await.unwrap().expose_secret(),
        "cert-token"
    );
    cc.invalidate().await;
    assert_eq!(
        cc.access_token().await.unwrap().expose_secret(),
        "cert-token"
    );
    let jtis = jtis.lock().unwrap().clone();
    assert_eq!(jtis.len(), 2);
    assert_ne!(jtis[0], jtis[1], "each assertion has its own jti");
    assert!(
        !format!("{cc:?}").contains("PRIVATE"),
        "Debug hides the key"
    );

    // The verifier is strict: another audience or a tampered signature fails.
    let assertion = assertions.lock().unwrap()[0].clone();
    let token_url = format!("{}{}", base.get().unwrap(), azure_token_path());
    assert!(verify_assertion(&assertion, &cert.der, &token_url).is_ok());
    assert!(verify_assertion(&assertion, &cert.der, "https://login.example/other/token").is_err());
    let sig_at = assertion.rfind('.').unwrap() + 10;
    let original = assertion.as_bytes()[sig_at] as char;
    let mut tampered = assertion.clone();
    tampered.replace_range(sig_at..sig_at + 1, if original == 'A' { "B" } else { "A" });
    assert!(verify_assertion(&tampered, &cert.der, &token_url).is_err());
}

#[tokio::test]
async fn certificate_file_problems_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let only_cert = dir.path().join("cert-only.pem");
    let cert = test_cert();
    let cert_part = &cert.pem[cert.pem.find("-----BEGIN CERTIFICATE").unwrap()..];
    std::fs::write(&only_cert, cert_part).unwrap();
    let mock = Mock::start(|_| Reply::text(500, "unused")).await;
    let err = ClientCredentials::azure(
        &azure_config(&mock, AzureCredential::Certificate(only_cert)),
        reqwest::Client::new(),
    )
    .unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Config);
    assert!(err.to_string().contains("cert-only.pem"), "{err}");
    assert!(err.to_string().contains("no private key"), "{err}");

    let missing = dir.path().join("missing.pem");
    let err = ClientCredentials::azure(
        &azure_config(&mock, AzureCredential::Certificate(missing)),
        reqwest::Client::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("missing.pem"), "{err}");
}

#[tokio::test]
async fn refused_credentials_name_the_aadsts_code_but_never_the_secret() {
    let mock = Mock::start(|_| {
        Reply::json(
            401,
            serde_json::json!({
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.\r\nTrace ID: abc",
                "error_codes": [7000215]
            }),
        )
    })
    .await;
    let cc = ClientCredentials::azure(&azure_config(&mock, secret()), reqwest::Client::new())
        .unwrap()
        .with_retry(fast_retry());
    let err = cc.access_token().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Auth);
    assert_eq!(err.system, System::Azure);
    assert_eq!(err.status, Some(401));
    assert_eq!(err.code.as_deref(), Some("invalid_client"));
    let text = err.to_string();
    assert!(text.contains("AADSTS7000215"), "{text}");
    assert!(text.contains(&azure_token_path()), "{text}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(!format!("{err:?}").contains(SECRET));
    assert!(!format!("{cc:?}").contains(SECRET));
    // 401 from the token endpoint is not retried.
    assert_eq!(mock.hits("/login").len(), 1);
}

#[tokio::test]
async fn login_throttling_is_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let mock = Mock::start(move |_| {
        if c.fetch_add(1, Ordering::SeqCst) < 2 {
            Reply::json(503, serde_json::json!({"error": "temporarily_unavailable"}))
        } else {
            token_reply("tok-after-503", 3599)
        }
    })
    .await;
    let cc = ClientCredentials::azure(&azure_config(&mock, secret()), reqwest::Client::new())
        .unwrap()
        .with_retry(fast_retry());
    assert_eq!(
        cc.access_token().await.unwrap().expose_secret(),
        "tok-after-503"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn ifs_token_endpoint_is_discovered_once() {
    let base = Arc::new(OnceLock::<String>::new());
    let b = base.clone();
    let issued = Arc::new(AtomicUsize::new(0));
    let i = issued.clone();
    let mock = Mock::start(move |r| match r.path.as_str() {
        "/auth/realms/prod/.well-known/openid-configuration" => Reply::json(
            200,
            serde_json::json!({
                "issuer": format!("{}/auth/realms/prod", b.get().unwrap()),
                "token_endpoint": format!("{}/auth/realms/prod/protocol/openid-connect/token", b.get().unwrap())
            }),
        ),
        "/auth/realms/prod/protocol/openid-connect/token" => {
            let f = r.form();
            if f.get("client_secret").map(String::as_str) != Some("ifs-secret-value")
                || f.get("grant_type").map(String::as_str) != Some("client_credentials")
            {
                return Reply::json(401, serde_json::json!({"error": "unauthorized_client"}));
            }
            let n = i.fetch_add(1, Ordering::SeqCst) + 1;
            token_reply(&format!("ifs-{n}"), 300)
        }
        _ => Reply::json(404, serde_json::json!({"error": "not found"})),
    })
    .await;
    base.set(mock.base.as_str().trim_end_matches('/').to_string())
        .unwrap();
    let cc = ClientCredentials::ifs(&ifs_config(&mock, 100), reqwest::Client::new()).unwrap();
    assert_eq!(cc.access_token().await.unwrap().expose_secret(), "ifs-1");
    cc.invalidate().await;
    assert_eq!(cc.access_token().await.unwrap().expose_secret(), "ifs-2");
    assert_eq!(
        mock.hits("/auth/realms/prod/.well-known").len(),
        1,
        "discovery cached"
    );
}

#[tokio::test]
async fn ifs_discovery_failure_is_an_auth_error() {
    let mock =
        Mock::start(|_| Reply::json(404, serde_json::json!({"error": "Realm does not exist"})))
            .await;
    let cc = ClientCredentials::ifs(&ifs_config(&mock, 100), reqwest::Client::new()).unwrap();
    let err = cc.access_token().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Auth);
    assert_eq!(err.system, System::Ifs);
    assert_eq!(err.status, Some(404));
    assert!(
        err.to_string()
            .contains("/auth/realms/prod/.well-known/openid-configuration"),
        "{err}"
    );
    assert!(err.to_string().contains("Realm does not exist"), "{err}");
}

#[tokio::test]
async fn non_json_token_answer_is_an_error_not_a_panic() {
    let mock = Mock::start(|_| Reply::text(200, "<html>login page</html>")).await;
    let cc =
        ClientCredentials::azure(&azure_config(&mock, secret()), reqwest::Client::new()).unwrap();
    let err = cc.access_token().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Auth);
    assert!(err.message.contains("not the expected JSON"), "{err}");
}
