//! SASL for the group membership connections ([`super::client`]), which are the worker's own
//! Kafka-protocol client rather than librdkafka: against a SASL_PLAINTEXT listener every
//! connection first logs in with SaslHandshake and SaslAuthenticate (KIP-152), using the same
//! `--kafka-sasl-*` settings as the worker's librdkafka clients: PLAIN (RFC 4616) or
//! SCRAM-SHA-256/512 (RFC 5802/7677, the client side: nonce, salted proof, and the server's
//! signature checked, so a broker that does not know the password cannot pass for one that does).
//!
//! TLS (SSL, SASL_SSL) is not spoken here yet: [`SaslLogin::from_properties`] refuses it with
//! a clear error instead of connecting in plaintext.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// How a group connection logs in.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslLogin {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslLogin")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"[hidden]")
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// Why the worker's Kafka settings cannot be used for its group connections.
#[derive(Debug, thiserror::Error)]
pub enum SaslSettingsError {
    #[error("the group membership client does not speak TLS yet (security.protocol {0}); use a PLAINTEXT or SASL_PLAINTEXT listener")]
    Tls(String),
    #[error(
        "the group membership client supports PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, not {0}"
    )]
    Mechanism(String),
    #[error("SASL needs sasl.username and sasl.password")]
    Credentials,
}

impl SaslLogin {
    /// From librdkafka properties (`security.protocol`, `sasl.mechanism`, `sasl.username`,
    /// `sasl.password`; later pairs win, as in a `ClientConfig`): `None` for PLAINTEXT.
    pub fn from_properties(
        properties: &[(String, String)],
    ) -> Result<Option<SaslLogin>, SaslSettingsError> {
        let get = |key: &str| {
            properties
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let protocol = get("security.protocol")
            .unwrap_or_else(|| "PLAINTEXT".into())
            .to_ascii_uppercase();
        match protocol.as_str() {
            "PLAINTEXT" => return Ok(None),
            "SASL_PLAINTEXT" => {}
            _ => return Err(SaslSettingsError::Tls(protocol)),
        }
        let mechanism = get("sasl.mechanism")
            .unwrap_or_else(|| "GSSAPI".into())
            .to_ascii_uppercase();
        let mechanism = match mechanism.as_str() {
            "PLAIN" => Mechanism::Plain,
            "SCRAM-SHA-256" => Mechanism::ScramSha256,
            "SCRAM-SHA-512" => Mechanism::ScramSha512,
            _ => return Err(SaslSettingsError::Mechanism(mechanism)),
        };
        match (get("sasl.username"), get("sasl.password")) {
            (Some(username), Some(password)) => Ok(Some(SaslLogin {
                mechanism,
                username,
                password,
            })),
            _ => Err(SaslSettingsError::Credentials),
        }
    }
}

/// One SASL conversation, step by step: [`Conversation::first`] gives the first message to
/// send, [`Conversation::next`] the answer to each server message (`None`: done).
pub enum Conversation {
    Plain,
    Scram(Box<Scram>),
}

pub struct Scram {
    sha512: bool,
    password: String,
    client_first_bare: String,
    nonce: String,
    /// The server signature expected in server-final, once the proof is sent.
    expected_server_signature: Option<Vec<u8>>,
}

fn hmac(sha512: bool, key: &[u8], data: &[u8]) -> Vec<u8> {
    if sha512 {
        let mut m = <Hmac<Sha512> as Mac>::new_from_slice(key).expect("HMAC takes any key");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    } else {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
}

fn hash(sha512: bool, data: &[u8]) -> Vec<u8> {
    if sha512 {
        Sha512::digest(data).to_vec()
    } else {
        Sha256::digest(data).to_vec()
    }
}

fn salted_password(sha512: bool, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    if sha512 {
        let mut out = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
        out.to_vec()
    } else {
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
        out.to_vec()
    }
}

/// RFC 5802's saslname: `=` and `,` escaped.
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Fewer rounds than this would make the salted password cheap to brute-force from a capture;
/// Kafka refuses them too (its minimum is 4096).
const MIN_ITERATIONS: u32 = 4096;

impl Conversation {
    /// Starts a conversation for `login`; returns it and the first message.
    pub fn first(login: &SaslLogin) -> (Conversation, Vec<u8>) {
        match login.mechanism {
            Mechanism::Plain => {
                let msg = format!("\0{}\0{}", login.username, login.password).into_bytes();
                (Conversation::Plain, msg)
            }
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                let nonce = uuid::Uuid::new_v4().simple().to_string();
                let client_first_bare = format!("n={},r={nonce}", saslname(&login.username));
                let msg = format!("n,,{client_first_bare}").into_bytes();
                (
                    Conversation::Scram(Box::new(Scram {
                        sha512: login.mechanism == Mechanism::ScramSha512,
                        password: login.password.clone(),
                        client_first_bare,
                        nonce,
                        expected_server_signature: None,
                    })),
                    msg,
                )
            }
        }
    }

    /// The answer to the server's `message`; `Ok(None)` when the exchange is complete.
    pub fn next(&mut self, message: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match self {
            Conversation::Plain => Ok(None),
            Conversation::Scram(s) => s.next(message),
        }
    }
}

impl Scram {
    fn next(&mut self, message: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let text = std::str::from_utf8(message).map_err(|_| "SCRAM message is not UTF-8")?;
        let attr = |name: char| {
            text.split(',')
                .find_map(|a| a.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        };
        if let Some(expected) = &self.expected_server_signature {
            if let Some(e) = attr('e') {
                return Err(format!("the broker refused the login: {e}"));
            }
            let got = attr('v')
                .and_then(|v| B64.decode(v).ok())
                .ok_or("server-final without a signature")?;
            if &got != expected {
                return Err(
                    "the broker's SCRAM signature is wrong: it does not know the password".into(),
                );
            }
            return Ok(None);
        }
        let nonce = attr('r').ok_or("server-first without a nonce")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len() {
            return Err("the broker's SCRAM nonce does not extend ours".into());
        }
        let salt = attr('s')
            .and_then(|s| B64.decode(s).ok())
            .ok_or("server-first without a valid salt")?;
        let iterations: u32 = attr('i')
            .and_then(|i| i.parse().ok())
            .ok_or("server-first without a valid iteration count")?;
        if iterations < MIN_ITERATIONS {
            return Err(format!(
                "the broker asks for {iterations} SCRAM iterations, fewer than {MIN_ITERATIONS}"
            ));
        }
        let salted = salted_password(self.sha512, self.password.as_bytes(), &salt, iterations);
        let client_key = hmac(self.sha512, &salted, b"Client Key");
        let stored_key = hash(self.sha512, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let signature = hmac(self.sha512, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac(self.sha512, &salted, b"Server Key");
        self.expected_server_signature =
            Some(hmac(self.sha512, &server_key, auth_message.as_bytes()));
        Ok(Some(
            format!("{without_proof},p={}", B64.encode(proof)).into_bytes(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn settings_from_librdkafka_properties() {
        assert_eq!(SaslLogin::from_properties(&[]).unwrap(), None);
        let login = SaslLogin::from_properties(&props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "alice"),
            ("sasl.password", "pw"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(login.mechanism, Mechanism::ScramSha512);
        assert!(!format!("{login:?}").contains("pw\""));
        assert!(matches!(
            SaslLogin::from_properties(&props(&[("security.protocol", "SASL_SSL")])),
            Err(SaslSettingsError::Tls(_))
        ));
        assert!(matches!(
            SaslLogin::from_properties(&props(&[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "GSSAPI")
            ])),
            Err(SaslSettingsError::Mechanism(_))
        ));
    }

    /// RFC 7677's SCRAM-SHA-256 example, with its client nonce.
    #[test]
    fn scram_sha_256_matches_the_rfc_example() {
        let mut s = Scram {
            sha512: false,
            password: "pencil".into(),
            client_first_bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".into(),
            nonce: "rOprNGfwEbeRWgbNEkqO".into(),
            expected_server_signature: None,
        };
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let final_msg = s.next(server_first).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(final_msg).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            s.next(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .unwrap(),
            None
        );
    }

    #[test]
    fn a_wrong_server_signature_or_short_nonce_is_refused() {
        let login = SaslLogin {
            mechanism: Mechanism::ScramSha512,
            username: "a=b,c".into(),
            password: "pw".into(),
        };
        let (mut conv, first) = Conversation::first(&login);
        let first = String::from_utf8(first).unwrap();
        assert!(first.starts_with("n,,n=a=3Db=2Cc,r="), "{first}");
        let nonce = first.rsplit("r=").next().unwrap().to_string();
        assert!(conv
            .next(format!("r={nonce},s=c2FsdA==,i=4096").as_bytes())
            .is_err());
        let server_first = format!("r={nonce}xyz,s=c2FsdA==,i=4096");
        assert!(conv.next(server_first.as_bytes()).unwrap().is_some());
        assert!(conv.next(b"v=AAAA").is_err());
        let (mut conv, first) = Conversation::first(&login);
        let first = String::from_utf8(first).unwrap();
        let nonce = first.rsplit("r=").next().unwrap();
        let err = conv
            .next(format!("r={nonce}x,s=c2FsdA==,i=10").as_bytes())
            .unwrap_err();
        assert!(err.contains("iterations"), "{err}");
    }
}
