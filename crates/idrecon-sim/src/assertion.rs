//! Checks an Azure AD client assertion (the JWT a client signs with its
//! certificate instead of sending a client secret), as Azure's token
//! endpoint does.
//!
//! Header forms (docs/simulator.md, "Credentials"): the two that Microsoft's
//! MSAL libraries send are accepted — `PS256` with `x5t#S256` and `RS256`
//! with `x5t` (SHA-1) — and `RS256` with only `x5t#S256` is refused with
//! AADSTS700027, as reported against Entra ID. `nbf` is optional and
//! NumericDates may be fractional (RFC 7519 §2), as MSAL Python writes them.

use super::state::RegisteredCert;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

/// The longest lifetime Azure accepts for an assertion (`exp` − `nbf`/`iat`).
pub(crate) const MAX_ASSERTION_LIFETIME_SECS: i64 = 600;
/// Clock skew tolerated on `nbf`.
const CLOCK_SKEW_SECS: i64 = 300;

/// A refused assertion: the AADSTS code and text for the error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AssertionError {
    pub unauthorized: bool,
    pub aadsts: u32,
    pub message: String,
}

fn malformed(message: impl Into<String>) -> AssertionError {
    AssertionError {
        unauthorized: false,
        aadsts: 50027,
        message: format!("JWT token is invalid or malformed: {}", message.into()),
    }
}

fn b64url_json(part: &str, what: &str) -> Result<Value, AssertionError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| malformed(format!("{what} is not base64url")))?;
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|_| malformed(format!("{what} is not JSON")))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(malformed(format!("{what} is not a JSON object")))
    }
}

/// Validates `assertion` for `client_id`. `token_urls` are the URLs the
/// client may have used as audience. When certificates are registered, the
/// `x5t#S256` must name one of them and the signature must verify with it.
pub(crate) fn validate(
    assertion: &str,
    client_id: &str,
    token_urls: &[String],
    certificates: &[RegisteredCert],
    used_jtis: &mut HashSet<String>,
) -> Result<(), AssertionError> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header_b64, claims_b64, signature_b64] = parts.as_slice() else {
        return Err(malformed("a JWT has three dot-separated parts"));
    };
    let header = b64url_json(header_b64, "header")?;
    let claims = b64url_json(claims_b64, "payload")?;

    let algorithm = match header.get("alg").and_then(Value::as_str) {
        Some("RS256") => Algorithm::RS256,
        Some("PS256") => Algorithm::PS256,
        Some(other) => {
            return Err(malformed(format!(
                "header alg '{other}' is not supported (RS256 or PS256)"
            )))
        }
        None => return Err(malformed("header has no alg")),
    };
    // Thumbprints are compared without base64 padding: MSAL Python pads
    // them (`…=`) and Entra accepts that.
    let text_header = |name: &str| {
        header
            .get(name)
            .and_then(Value::as_str)
            .map(|t| t.trim_end_matches('='))
            .filter(|t| !t.is_empty())
    };
    let x5t_s256 = text_header("x5t#S256");
    let x5t = text_header("x5t");
    if x5t_s256.is_none() && x5t.is_none() {
        return Err(malformed(
            "header has neither x5t#S256 nor x5t (certificate thumbprint)",
        ));
    }
    if algorithm == Algorithm::RS256 && x5t.is_none() {
        // MSAL never sends this combination; Entra has been reported to
        // answer it with AADSTS700027 (docs/simulator.md, "Credentials").
        return Err(AssertionError {
            unauthorized: true,
            aadsts: 700027,
            message: "Client assertion failed signature validation: RS256 needs the SHA-1 thumbprint header x5t (use PS256 with x5t#S256).".into(),
        });
    }

    let text_claim = |name: &str| claims.get(name).and_then(Value::as_str);
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => audience_matches(aud, token_urls),
        Some(Value::Array(auds)) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|a| audience_matches(a, token_urls)),
        _ => false,
    };
    if !aud_ok {
        return Err(AssertionError {
            unauthorized: true,
            aadsts: 50012,
            message: format!(
                "Client assertion audience claim does not match Realm issuer. Expected aud '{}'.",
                token_urls.first().map(String::as_str).unwrap_or("")
            ),
        });
    }
    if text_claim("iss") != Some(client_id) || text_claim("sub") != Some(client_id) {
        return Err(AssertionError {
            unauthorized: true,
            aadsts: 700021,
            message: "Client assertion application identifier doesn't match 'client_id' parameter (iss and sub must both be the client ID).".into(),
        });
    }
    let jti = text_claim("jti")
        .filter(|j| !j.is_empty())
        .ok_or_else(|| malformed("claim jti is missing"))?;

    // NumericDate: seconds, possibly fractional (RFC 7519 §2).
    let number = |name: &str| -> Result<Option<i64>, AssertionError> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(|f| Some(f.floor() as i64))
                .ok_or_else(|| malformed(format!("claim {name} is not a number"))),
        }
    };
    let exp = number("exp")?.ok_or_else(|| malformed("claim exp is missing"))?;
    let nbf = number("nbf")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let time_error = |detail: String| AssertionError {
        unauthorized: true,
        aadsts: 700024,
        message: format!("Client assertion is not within its valid time range. {detail}"),
    };
    if exp <= now {
        return Err(time_error(format!("exp {exp} is in the past (now {now}).")));
    }
    if let Some(nbf) = nbf {
        if nbf > now + CLOCK_SKEW_SECS {
            return Err(time_error(format!(
                "nbf {nbf} is in the future (now {now})."
            )));
        }
        if exp - nbf > MAX_ASSERTION_LIFETIME_SECS {
            return Err(time_error(format!(
                "exp is {} s after nbf; at most {MAX_ASSERTION_LIFETIME_SECS} s are allowed.",
                exp - nbf
            )));
        }
    }
    if let Some(iat) = number("iat")? {
        if exp - iat > MAX_ASSERTION_LIFETIME_SECS {
            return Err(time_error(format!(
                "exp is {} s after iat; at most {MAX_ASSERTION_LIFETIME_SECS} s are allowed.",
                exp - iat
            )));
        }
    }

    if !certificates.is_empty() {
        let cert = certificates
            .iter()
            .find(|c| {
                x5t_s256.is_some_and(|t| t == c.thumbprint_s256)
                    || x5t.is_some_and(|t| t == c.thumbprint_sha1)
            })
            .ok_or_else(|| AssertionError {
                unauthorized: true,
                aadsts: 700027,
                message: format!(
                    "The certificate with identifier used to sign the client assertion is not registered on application. [x5t#S256 {}, x5t {}]",
                    x5t_s256.unwrap_or("-"),
                    x5t.unwrap_or("-")
                ),
            })?;
        let message = format!("{header_b64}.{claims_b64}");
        let valid =
            jsonwebtoken::crypto::verify(signature_b64, message.as_bytes(), &cert.key, algorithm)
                .unwrap_or(false);
        if !valid {
            return Err(AssertionError {
                unauthorized: true,
                aadsts: 700027,
                message: "Client assertion failed signature validation.".into(),
            });
        }
    }

    if !used_jtis.insert(jti.to_string()) {
        return Err(AssertionError {
            unauthorized: true,
            aadsts: 700024,
            message: format!("Client assertion with jti '{jti}' was already used (replay)."),
        });
    }
    Ok(())
}

fn audience_matches(aud: &str, token_urls: &[String]) -> bool {
    let aud = aud.trim_end_matches('/');
    token_urls
        .iter()
        .any(|u| u.trim_end_matches('/').eq_ignore_ascii_case(aud))
}

/// Reads a PEM certificate (other PEM blocks, e.g. the private key, are
/// ignored) into what assertion checks need.
pub(crate) fn register_certificate(pem_text: &str) -> Result<RegisteredCert, String> {
    let blocks = pem::parse_many(pem_text).map_err(|e| format!("not PEM: {e}"))?;
    let der = blocks
        .iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.contents().to_vec())
        .ok_or("no CERTIFICATE block in the PEM")?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let spki = cert.public_key();
    let key = match spki.parsed() {
        // For RSA the key bit string is the PKCS#1 RSAPublicKey DER.
        Ok(x509_parser::public_key::PublicKey::RSA(_)) => {
            DecodingKey::from_rsa_der(&spki.subject_public_key.data)
        }
        Ok(_) => return Err("the certificate's key is not RSA (RS256/PS256 need RSA)".into()),
        Err(e) => return Err(format!("unreadable public key: {e}")),
    };
    Ok(RegisteredCert {
        thumbprint_s256: thumbprint_s256(&der),
        thumbprint_sha1: thumbprint_sha1(&der),
        key,
    })
}

/// base64url SHA-1 of a DER certificate: the `x5t` header value.
pub fn thumbprint_sha1(der: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha1::digest(der))
}

/// base64url SHA-256 of a DER certificate: the `x5t#S256` header value.
pub fn thumbprint_s256(der: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: Value, claims: Value) -> String {
        let e = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        format!("{}.{}.c2ln", e(&header), e(&claims))
    }

    fn now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn structural_checks_without_registered_certificate() {
        let url = vec!["http://h/azure-login/t/oauth2/v2.0/token".to_string()];
        let header = serde_json::json!({"alg":"PS256","typ":"JWT","x5t#S256":"abc"});
        let good = serde_json::json!({"aud":url[0],"iss":"c","sub":"c","jti":"1","nbf":now(),"exp":now()+600});
        let mut jtis = HashSet::new();
        assert_eq!(
            validate(
                &jwt(header.clone(), good.clone()),
                "c",
                &url,
                &[],
                &mut jtis
            ),
            Ok(())
        );
        // replay
        assert_eq!(
            validate(
                &jwt(header.clone(), good.clone()),
                "c",
                &url,
                &[],
                &mut jtis
            )
            .unwrap_err()
            .aadsts,
            700024
        );
        let cases = [
            (
                serde_json::json!({"alg":"HS256","x5t#S256":"abc"}),
                good.clone(),
                50027,
            ),
            (serde_json::json!({"alg":"RS256"}), good.clone(), 50027),
            // RS256 with only the SHA-256 thumbprint: never sent by MSAL.
            (
                serde_json::json!({"alg":"RS256","x5t#S256":"abc"}),
                serde_json::json!({"aud":url[0],"iss":"c","sub":"c","jti":"rs","exp":now()+60}),
                700027,
            ),
            (
                header.clone(),
                serde_json::json!({"aud":"x","iss":"c","sub":"c","jti":"2","nbf":now(),"exp":now()+60}),
                50012,
            ),
            (
                header.clone(),
                serde_json::json!({"aud":url[0],"iss":"c","sub":"d","jti":"3","nbf":now(),"exp":now()+60}),
                700021,
            ),
            (
                header.clone(),
                serde_json::json!({"aud":url[0],"iss":"c","sub":"c","nbf":now(),"exp":now()+60}),
                50027,
            ),
            (
                header.clone(),
                serde_json::json!({"aud":url[0],"iss":"c","sub":"c","jti":"4","nbf":now(),"exp":now()+601}),
                700024,
            ),
            (
                header.clone(),
                serde_json::json!({"aud":url[0],"iss":"c","sub":"c","jti":"5","nbf":now()-100,"exp":now()-1}),
                700024,
            ),
        ];
        for (h, c, code) in cases {
            let err = validate(&jwt(h, c.clone()), "c", &url, &[], &mut jtis).unwrap_err();
            assert_eq!(err.aadsts, code, "{c}: {}", err.message);
        }
        // MSAL Python's shapes: RS256 + x5t, no nbf, fractional dates.
        let msal_rs = serde_json::json!({"alg":"RS256","typ":"JWT","x5t":"sha1="});
        let msal_claims = serde_json::json!({"aud":url[0],"iss":"c","sub":"c","jti":"m1",
            "iat": now() as f64 + 0.25, "exp": now() as f64 + 600.25});
        assert_eq!(
            validate(&jwt(msal_rs, msal_claims), "c", &url, &[], &mut jtis),
            Ok(())
        );
        assert_eq!(
            validate("a.b", "c", &url, &[], &mut jtis)
                .unwrap_err()
                .aadsts,
            50027
        );
    }
}
