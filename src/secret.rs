//! Secrets: generated tokens, their SHA-256 digests (all the store keeps of a credential),
//! constant-time comparison, and the bearer token of a request.

use axum::http::{header, HeaderMap};
use rand::distr::{Alphanumeric, SampleString};
use subtle::ConstantTimeEq;

/// Length of generated publish and admin tokens.
const TOKEN_LEN: usize = 24;

/// A random token for publishers or the admin (24 alphanumerics, ~143 bits).
pub fn random_token() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), TOKEN_LEN)
}

/// Random characters of a credential or admin token after its prefix (~190 bits).
const CREDENTIAL_LEN: usize = 32;

/// A new credential: `prefix` then 32 random alphanumerics. The prefix tells a person (and a
/// secret scanner) what leaked: `bcp_` a publish credential, `bca_` an admin token.
pub fn new_credential(prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + CREDENTIAL_LEN);
    s.push_str(prefix);
    s.push_str(&Alphanumeric.sample_string(&mut rand::rng(), CREDENTIAL_LEN));
    s
}

/// A short public id (not a secret): `prefix` then 10 random lowercase alphanumerics.
pub fn new_id(prefix: &str) -> String {
    let tail: String = Alphanumeric
        .sample_string(&mut rand::rng(), 10)
        .to_ascii_lowercase();
    format!("{prefix}{tail}")
}

/// The SHA-256 digest of a token. Credentials are high-entropy random strings, so a plain
/// digest (no salt, no slow hash) is enough: nobody can guess one from its digest, and the
/// server finds a presented token by its digest without keeping the token.
pub fn digest(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Whether two secrets are equal, in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Whether `token` equals one of `tokens`, comparing with every one of them (constant time).
pub fn any_same<'a>(tokens: impl IntoIterator<Item = &'a String>, token: &str) -> bool {
    tokens.into_iter().fold(false, |ok, t| ok | same(t, token))
}

/// Which of `tokens` equals `token` (its index), comparing with every one of them.
pub fn position<'a>(tokens: impl IntoIterator<Item = &'a String>, token: &str) -> Option<usize> {
    tokens.into_iter().enumerate().fold(
        None,
        |found, (i, t)| if same(t, token) { Some(i) } else { found },
    )
}

/// The token of an `Authorization: Bearer T` header (the scheme is case-insensitive, RFC 7235).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn digests_are_sha256() {
        // echo -n abc | sha256sum
        let hex: String = super::digest("abc")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let a = super::new_credential("bcp_");
        assert!(a.starts_with("bcp_") && a.len() == 36);
        assert_ne!(a, super::new_credential("bcp_"));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        use axum::http::{header, HeaderMap, HeaderValue};
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(v));
            h
        };
        for v in ["Bearer t0k", "bearer t0k", "BEARER  t0k "] {
            assert_eq!(super::bearer(&with(v)), Some("t0k"), "{v}");
        }
        for v in ["Basic dXNlcg==", "Bearer", "Bearer  ", "Bearert0k"] {
            assert_eq!(super::bearer(&with(v)), None, "{v}");
        }
        assert_eq!(super::bearer(&HeaderMap::new()), None);
    }
}
