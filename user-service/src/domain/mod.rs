//! Validated inputs: a handler only ever sees a sign-up or login that passed these checks.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, FieldError};

/// `POST /users` as sent; raw values so that each bad field is reported by name.
#[derive(Debug, Default, Deserialize)]
pub struct SignUpRequest {
    pub email: Option<Value>,
    pub name: Option<Value>,
    pub pwd: Option<Value>,
}

/// `POST /login` as sent.
#[derive(Debug, Default, Deserialize)]
pub struct LoginRequest {
    pub email: Option<Value>,
    pub password: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub pwd: String,
}

fn string(field: &'static str, v: Option<Value>, errors: &mut Vec<FieldError>) -> Option<String> {
    match v {
        None | Some(Value::Null) => {
            errors.push(FieldError::new(field, "is required"));
            None
        }
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            errors.push(FieldError::new(field, "must be a string"));
            None
        }
    }
}

/// A plausible email address: `local@domain.tld`, no spaces, at most 255 characters (the
/// column). Deliberately simple, like the tutorial's `@Email`; the real check is a mail.
pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 255
        && !local.is_empty()
        && !domain.contains('@')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty())
}

impl NewUser {
    pub fn parse(req: SignUpRequest) -> Result<NewUser, ApiError> {
        let mut errors = Vec::new();
        let email = string("email", req.email, &mut errors).map(|e| e.trim().to_string());
        if let Some(e) = &email {
            if !valid_email(e) {
                errors.push(FieldError::new(
                    "email",
                    "must be a well-formed email address",
                ));
            }
        }
        let name = string("name", req.name, &mut errors).map(|n| n.trim().to_string());
        if let Some(n) = &name {
            let len = n.chars().count();
            if len < 2 {
                errors.push(FieldError::new("name", "must be at least 2 characters"));
            } else if len > 255 {
                errors.push(FieldError::new("name", "must be at most 255 characters"));
            }
        }
        let pwd = string("pwd", req.pwd, &mut errors);
        if let Some(p) = &pwd {
            let len = p.chars().count();
            if len < 8 {
                errors.push(FieldError::new("pwd", "must be at least 8 characters"));
            } else if len > 256 {
                errors.push(FieldError::new("pwd", "must be at most 256 characters"));
            }
        }
        match (email, name, pwd) {
            (Some(email), Some(name), Some(pwd)) if errors.is_empty() => {
                Ok(NewUser { email, name, pwd })
            }
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// Checks a login request's shape (not the credentials).
pub fn parse_login(req: LoginRequest) -> Result<(String, String), ApiError> {
    let mut errors = Vec::new();
    let email = string("email", req.email, &mut errors);
    let password = string("password", req.password, &mut errors);
    match (email, password) {
        (Some(e), Some(p)) if errors.is_empty() => Ok((e.trim().to_string(), p)),
        _ => Err(ApiError::Validation(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Vec<&'static str> {
        match NewUser::parse(serde_json::from_value(v).unwrap()) {
            Err(ApiError::Validation(f)) => f.into_iter().map(|f| f.field).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@example.org"] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "a@", "@b.co", "a@b", "a@b..co", "a b@c.de", "a@b@c.de",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn sign_up_rules_as_in_the_tutorial() {
        let ok: SignUpRequest =
            serde_json::from_value(json!({"email":"a@b.co","name":"Al","pwd":"12345678"})).unwrap();
        assert!(NewUser::parse(ok).is_ok());
        assert_eq!(fields(json!({})), ["email", "name", "pwd"]);
        assert_eq!(
            fields(json!({"email":"nope","name":"A","pwd":"1234567"})),
            ["email", "name", "pwd"]
        );
        assert_eq!(
            fields(json!({"email":"a@b.co","name":7,"pwd":"12345678"})),
            ["name"]
        );
    }
}
