//! Secrets: generated tokens, constant-time comparison, and the bearer token of a request.

use axum::http::{header, HeaderMap};
use rand::distr::{Alphanumeric, SampleString};
use subtle::ConstantTimeEq;

/// Length of generated publish and admin tokens.
const TOKEN_LEN: usize = 24;

/// A random token for publishers or the admin (24 alphanumerics, ~143 bits).
pub fn random_token() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), TOKEN_LEN)
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
