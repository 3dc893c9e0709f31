//! Credentials, read the same way by every front end: the one bearer-token parser
//! ([`bearer_token`]) and the one place a request's token is taken from its headers
//! ([`bearer`]: HTTP headers, or gRPC metadata through `MetadataMap::as_ref`), and
//! HTTP Basic credentials (the Flight SQL handshake, whose password is the token).

use axum::http::{HeaderMap, header};

/// The `Authorization` value of a request (HTTP headers or gRPC metadata), if it is
/// text.
pub fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// The bearer token of a request: its `Authorization: Bearer TOKEN` header (HTTP) or
/// metadata (gRPC), parsed by [`bearer_token`]. Every front end takes tokens here.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    authorization(headers).and_then(bearer_token)
}

/// The token of an `Authorization` value `Bearer TOKEN`. The scheme is matched without
/// regard to case (RFC 7235: `bearer`, `BEARER` and `Bearer` are one scheme) and the
/// token is trimmed; anything else is `None`. The one parser HTTP and Flight SQL use.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim_start().split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty()).then_some(token)
}

/// The credentials of an `Authorization` value `Basic BASE64(user:password)` (scheme
/// matched without regard to case; padded or unpadded base64, as clients differ).
pub fn basic_credentials(value: &str) -> Option<(String, String)> {
    use base64::Engine;
    let (scheme, rest) = value.trim_start().split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(rest.trim().trim_end_matches('='))
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    text.split_once(':')
        .map(|(u, p)| (u.to_owned(), p.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_nothing_else_is_a_token() {
        for v in [
            "Bearer dhub_x",
            "bearer dhub_x",
            "BEARER dhub_x",
            "bEaReR   dhub_x  ",
            "Bearer\tdhub_x",
        ] {
            assert_eq!(bearer_token(v), Some("dhub_x"), "{v:?}");
        }
        for v in [
            "Basic dhub_x",
            "Bearer",
            "Bearer ",
            "Bearerdhub_x",
            "dhub_x",
            "",
        ] {
            assert_eq!(bearer_token(v), None, "{v:?}");
        }
    }

    #[test]
    fn http_headers_and_grpc_metadata_give_the_same_token() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "bearer  dhub_x ".parse().unwrap());
        assert_eq!(bearer(&h), Some("dhub_x"));
        let mut m = tonic::metadata::MetadataMap::new();
        m.insert("authorization", "Bearer dhub_x".parse().unwrap());
        assert_eq!(bearer(m.as_ref()), Some("dhub_x"));
        m.insert("authorization", "Basic dTpkaHViX3g=".parse().unwrap());
        assert_eq!(bearer(m.as_ref()), None);
        assert_eq!(authorization(m.as_ref()), Some("Basic dTpkaHViX3g="));
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn basic_credentials_decode_padded_or_not() {
        // "u:dhub_x"
        assert_eq!(
            basic_credentials("Basic dTpkaHViX3g="),
            Some(("u".into(), "dhub_x".into()))
        );
        assert_eq!(
            basic_credentials("basic dTpkaHViX3g"),
            Some(("u".into(), "dhub_x".into()))
        );
        assert_eq!(basic_credentials("Bearer dTpkaHViX3g="), None);
    }
}
