//! DescribeUserScramCredentials (API 50) and AlterUserScramCredentials (API 51, KIP-554): what
//! `kafka-configs --entity-type users` and the admin clients manage SCRAM users with, against
//! the broker's [`CredentialStore`](crate::security::credentials::CredentialStore). The
//! validations and error codes are Kafka's (`ControllerApis` / `ScramControlManager`): an
//! unknown mechanism is UNSUPPORTED_SASL_MECHANISM; an empty user or an iteration count outside
//! 4096..=16384 is UNACCEPTABLE_CREDENTIAL; a user named twice in one request is
//! DUPLICATE_RESOURCE; deleting or describing what does not exist is RESOURCE_NOT_FOUND. The
//! request is applied atomically per user: a user with any bad entry changes nothing.
//!
//! Authorization (Kafka: DESCRIBE resp. ALTER on the CLUSTER resource) belongs to the
//! authorizer; both handlers take the connection's [`Session`] for it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};

use super::{code, str_bytes, NONE};
use crate::broker::Broker;
use crate::protocol::Session;
use crate::security::credentials::Change;
use crate::security::scram::{Mechanism, ScramCredential, MAX_ITERATIONS, MIN_ITERATIONS};

/// DescribeUserScramCredentials: every user's mechanisms and iterations (users null or
/// empty), or the named users'.
pub fn describe(
    broker: &Broker,
    _session: &Session,
    req: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let store = &broker.credentials;
    let asked: Vec<String> = match req.users {
        Some(users) if !users.is_empty() => users.into_iter().map(|u| u.name.to_string()).collect(),
        _ => store.users(),
    };
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for user in &asked {
        *counts.entry(user.as_str()).or_default() += 1;
    }
    let mut reported = std::collections::HashSet::new();
    let mut results = Vec::new();
    for user in &asked {
        if !reported.insert(user.as_str()) {
            continue;
        }
        let result = DescribeUserScramCredentialsResult::default().with_user(str_bytes(user));
        let result = if counts[user.as_str()] > 1 {
            result
                .with_error_code(code(ResponseError::DuplicateResource))
                .with_error_message(Some(str_bytes(format!(
                    "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
                ))))
        } else {
            let infos = store.describe(user);
            if infos.is_empty() {
                result
                    .with_error_code(code(ResponseError::ResourceNotFound))
                    .with_error_message(Some(str_bytes(format!(
                        "Attempt to describe a user credential that does not exist: {user}"
                    ))))
            } else {
                result.with_credential_infos(
                    infos
                        .into_iter()
                        .map(|(m, iterations)| {
                            CredentialInfo::default()
                                .with_mechanism(m.kafka_type())
                                .with_iterations(iterations as i32)
                        })
                        .collect(),
                )
            }
        };
        results.push(result);
    }
    DescribeUserScramCredentialsResponse::default()
        .with_error_code(NONE)
        .with_results(results)
}

/// Why one entry of an AlterUserScramCredentials request is refused.
type Refusal = (ResponseError, String);

/// The mechanism of one entry, known or refused.
fn check_mechanism(m: i8) -> Result<Mechanism, Refusal> {
    Mechanism::from_kafka_type(m).ok_or_else(|| {
        (
            ResponseError::UnsupportedSaslMechanism,
            format!("Unknown SCRAM mechanism {m}"),
        )
    })
}

/// AlterUserScramCredentials: applied now (the next login uses it), answered once durable.
pub fn alter(
    broker: &Arc<Broker>,
    _session: &Session,
    req: AlterUserScramCredentialsRequest,
) -> impl Future<Output = Option<AlterUserScramCredentialsResponse>> + Send + 'static {
    let store = &broker.credentials;
    // Users in request order, each with its changes or its first error.
    let mut order: Vec<String> = Vec::new();
    let mut entries: HashMap<String, (usize, Result<Vec<Change>, Refusal>)> = HashMap::new();
    let mut add = |user: String, change: Result<Change, Refusal>| {
        let entry = entries.entry(user.clone()).or_insert_with(|| {
            order.push(user.clone());
            (0, Ok(Vec::new()))
        });
        entry.0 += 1;
        match (&mut entry.1, change) {
            (Ok(changes), Ok(change)) => changes.push(change),
            (Ok(_), Err(e)) => entry.1 = Err(e),
            (Err(_), _) => {}
        }
    };
    for d in req.deletions {
        let user = d.name.to_string();
        let change = if user.is_empty() {
            Err((
                ResponseError::UnacceptableCredential,
                "Username must not be empty".to_string(),
            ))
        } else {
            check_mechanism(d.mechanism).and_then(|mechanism| {
                if store.contains(&user, mechanism) {
                    Ok(Change::Delete {
                        user: user.clone(),
                        mechanism,
                    })
                } else {
                    Err((
                        ResponseError::ResourceNotFound,
                        format!(
                            "Attempt to delete a user credential that does not exist: {user} {}",
                            mechanism.name()
                        ),
                    ))
                }
            })
        };
        add(user, change);
    }
    for u in req.upsertions {
        let user = u.name.to_string();
        let change = if user.is_empty() {
            Err((
                ResponseError::UnacceptableCredential,
                "Username must not be empty".to_string(),
            ))
        } else {
            check_mechanism(u.mechanism).and_then(|mechanism| {
                if u.iterations < MIN_ITERATIONS as i32 {
                    Err((
                        ResponseError::UnacceptableCredential,
                        format!(
                            "Too few iterations: {} (at least {MIN_ITERATIONS})",
                            u.iterations
                        ),
                    ))
                } else if u.iterations > MAX_ITERATIONS as i32 {
                    Err((
                        ResponseError::UnacceptableCredential,
                        format!(
                            "Too many iterations: {} (at most {MAX_ITERATIONS})",
                            u.iterations
                        ),
                    ))
                } else if u.salt.is_empty() || u.salted_password.is_empty() {
                    Err((
                        ResponseError::UnacceptableCredential,
                        "Salt and salted password must not be empty".to_string(),
                    ))
                } else {
                    Ok(Change::Upsert {
                        user: user.clone(),
                        mechanism,
                        credential: ScramCredential::from_salted_password(
                            mechanism,
                            &u.salted_password,
                            &u.salt,
                            u.iterations as u32,
                        ),
                    })
                }
            })
        };
        add(user, change);
    }
    let mut changes = Vec::new();
    let mut results = Vec::new();
    for user in order {
        let (count, outcome) = entries
            .remove(&user)
            .expect("every ordered user has an entry");
        let outcome = if count > 1 {
            Err((
                ResponseError::DuplicateResource,
                format!("A user credential cannot be altered twice in the same request: {user}"),
            ))
        } else {
            outcome
        };
        let result = AlterUserScramCredentialsResult::default().with_user(str_bytes(&user));
        results.push(match outcome {
            Ok(mut c) => {
                changes.append(&mut c);
                result.with_error_code(NONE)
            }
            Err((e, message)) => result
                .with_error_code(code(e))
                .with_error_message(Some(str_bytes(message))),
        });
    }
    let durable = store.alter(changes);
    async move {
        if let Err(e) = durable.await {
            tracing::warn!(error = %e, "could not store SCRAM credentials");
            for r in results.iter_mut().filter(|r| r.error_code == NONE) {
                r.error_code = code(ResponseError::KafkaStorageError);
                r.error_message = Some(str_bytes(e.clone()));
            }
        }
        Some(AlterUserScramCredentialsResponse::default().with_results(results))
    }
}
