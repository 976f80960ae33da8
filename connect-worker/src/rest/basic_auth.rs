//! HTTP basic authentication of the REST API, as Kafka Connect's `BasicAuthSecurityRestExtension`
//! does it with JAAS's `PropertyFileLoginModule`: the users are a Java properties file of
//! `user: password` (or `user=password`) lines, `#`/`!` comments; every request needs an
//! `Authorization: Basic` header naming one of them, else a 401 with `WWW-Authenticate` and
//! Kafka Connect's JSON error body. Passwords are compared in constant time, and an unknown user
//! costs the same comparison as a known one, so timing tells nothing about either.
//!
//! The file is read once at start-up: a missing or unreadable file stops the worker rather than
//! leaving the API open.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use subtle::ConstantTimeEq;

/// The `WWW-Authenticate` challenge of a 401.
pub const CHALLENGE: &str = "Basic realm=\"connect\"";

/// Why the users file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UsersFileError {
    #[error("reading the REST users file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("REST users file {path}, line {line}: expected `user: password` or `user=password`")]
    Line { path: PathBuf, line: usize },
    #[error("REST users file {path} names no user: nobody could use the API")]
    Empty { path: PathBuf },
}

/// The users allowed to call the API.
#[derive(Clone)]
pub struct BasicAuth {
    users: Arc<HashMap<String, Vec<u8>>>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.users.keys().collect();
        names.sort();
        f.debug_struct("BasicAuth").field("users", &names).finish()
    }
}

impl BasicAuth {
    /// Reads a `PropertyFileLoginModule` file.
    pub fn load(path: &Path) -> Result<BasicAuth, UsersFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| UsersFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let users = parse(&text).map_err(|line| UsersFileError::Line {
            path: path.to_path_buf(),
            line,
        })?;
        if users.is_empty() {
            return Err(UsersFileError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(BasicAuth {
            users: Arc::new(users),
        })
    }

    /// Whether `authorization` (an `Authorization` header's value) names a user with the right
    /// password. Anything malformed is simply `false`.
    pub fn allows(&self, authorization: &[u8]) -> bool {
        let Some((user, password)) = credentials(authorization) else {
            return false;
        };
        // An unknown user is compared against a dummy, so it takes as long as a known one.
        let (expected, known) = match self.users.get(&user) {
            Some(p) => (p.as_slice(), true),
            None => (&b"\0unknown-user\0"[..], false),
        };
        let same: bool = expected.ct_eq(password.as_bytes()).into();
        same && known
    }
}

/// `(user, password)` of a `Basic` header value, if well formed.
fn credentials(authorization: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(authorization).ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Java properties as `PropertyFileLoginModule` reads them (without line continuations or
/// escapes, which a password file does not need): the key ends at the first unescaped `=`, `:`
/// or whitespace, the value is the rest with leading separator and blanks removed. `Err` is the
/// 1-based number of a line without a value.
fn parse(text: &str) -> Result<HashMap<String, Vec<u8>>, usize> {
    let mut users = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let end = line
            .find(|c: char| c == '=' || c == ':' || c.is_whitespace())
            .ok_or(i + 1)?;
        let (user, rest) = line.split_at(end);
        let rest = rest.trim_start();
        let rest = rest
            .strip_prefix('=')
            .or_else(|| rest.strip_prefix(':'))
            .unwrap_or(rest)
            .trim_start()
            .trim_end_matches(['\r', '\n']);
        if user.is_empty() {
            return Err(i + 1);
        }
        users.insert(user.to_string(), rest.as_bytes().to_vec());
    }
    Ok(users)
}

/// The middleware: lets a request with valid credentials through, answers any other with 401.
pub async fn require(State(auth): State<BasicAuth>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| auth.allows(v.as_bytes()));
    if ok {
        return next.run(req).await;
    }
    let mut response = super::error(StatusCode::UNAUTHORIZED, "User cannot access the resource.");
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(CHALLENGE),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(text: &str) -> BasicAuth {
        BasicAuth {
            users: Arc::new(parse(text).unwrap()),
        }
    }

    fn basic(user_password: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_password)
        )
        .into_bytes()
    }

    #[test]
    fn property_file_lines() {
        let users =
            parse("# comment\n! also\nalice: alice-pw\nbob=bob:pw\n  carol   c pw\n\n").unwrap();
        assert_eq!(users["alice"], b"alice-pw");
        assert_eq!(users["bob"], b"bob:pw");
        assert_eq!(users["carol"], b"c pw");
        assert_eq!(users.len(), 3);
        assert_eq!(parse("alice: a\nlonely\n"), Err(2));
        assert_eq!(parse("=nouser\n"), Err(1));
    }

    #[test]
    fn only_the_right_password_of_a_known_user() {
        let a = auth("alice: secret\n");
        assert!(a.allows(&basic("alice:secret")));
        assert!(a.allows(b"basic YWxpY2U6c2VjcmV0"));
        assert!(!a.allows(&basic("alice:wrong")));
        assert!(!a.allows(&basic("alice:secret2")));
        assert!(!a.allows(&basic("mallory:secret")));
        for malformed in [
            &b"Basic"[..],
            b"Basic !!!notbase64",
            b"Bearer YWxpY2U6c2VjcmV0",
            b"Basic YWxpY2U=",
            b"\xff\xfe",
            b"",
        ] {
            assert!(!a.allows(malformed));
        }
    }

    #[test]
    fn missing_or_empty_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none");
        assert!(matches!(
            BasicAuth::load(&missing),
            Err(UsersFileError::Read { .. })
        ));
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "# nobody\n").unwrap();
        assert!(matches!(
            BasicAuth::load(&empty),
            Err(UsersFileError::Empty { .. })
        ));
    }
}
