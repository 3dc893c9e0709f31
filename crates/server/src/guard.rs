//! Credentials shared by both front ends: the one bearer-token parser, and the check
//! made again when an answer is ready.

use dhub_govern::{AuthFailure, Principal};
use serde_json::{Map, json};

use crate::{ApiError, Caller, Governed};

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

impl Governed {
    /// Checks, when query `query_id`'s answer is ready and before it is sent, that the
    /// token it was asked with still holds for the same researcher (not revoked or
    /// expired since, nor its project). A token that no longer holds withholds the
    /// answer: the refusal is audited (`query.withheld`, under the researcher) and the
    /// caller gets the same 403 as a request made with that token now.
    pub async fn recheck(
        &self,
        token: Option<&str>,
        p: &Principal,
        query_id: &str,
        caller: &Caller,
    ) -> Result<(), ApiError> {
        let govern = self.govern.clone();
        let (token, who, project) = (
            token.unwrap_or_default().to_owned(),
            p.researcher.name.clone(),
            p.project.id.clone(),
        );
        let mut m = Map::new();
        m.insert("query_id".into(), json!(query_id));
        m.insert("researcher".into(), json!(p.researcher.name));
        m.insert("project".into(), json!(p.project.id));
        m.insert("client".into(), json!(caller.addr));
        m.insert("via".into(), json!(caller.via));
        // SQLite work, off the async threads
        let refused = tokio::task::spawn_blocking(move || {
            let checked = govern
                .check_token(&token)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let failure = match checked {
                Ok(now) if now.researcher.name == who && now.project.id == project => {
                    return Ok(None);
                }
                Ok(_) => AuthFailure::Unknown,
                Err(f) => f,
            };
            m.insert(
                "reason".into(),
                json!(format!("{failure:?}").to_lowercase()),
            );
            govern
                .audit("query.withheld", &who, m)
                .map_err(|e| ApiError::internal(format!("writing the audit entry: {e}")))?;
            Ok::<_, ApiError>(Some(failure))
        })
        .await
        .map_err(|e| ApiError::internal(format!("a blocking task failed: {e}")))??;
        match refused {
            None => Ok(()),
            Some(failure) => {
                self.metrics.count_auth_failure();
                Err(failure.into())
            }
        }
    }
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
