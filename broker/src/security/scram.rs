//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the server side, as Kafka's
//! `ScramSaslServer` runs it.
//!
//! Why SCRAM rather than only PLAIN: the broker never stores or sees a password, only
//! [`ScramCredential`] (salt, `StoredKey`, `ServerKey`, iterations), and the client proves it
//! knows the password without sending it, so a stolen credential store or a logged exchange
//! does not give the password away. The exchange is two round trips:
//!
//! ```text
//! client-first  n,,n=<user>,r=<client nonce>
//! server-first  r=<client nonce><server nonce>,s=<base64 salt>,i=<iterations>
//! client-final  c=biws,r=<nonce>,p=<base64 ClientProof>
//! server-final  v=<base64 ServerSignature>
//! ```
//!
//! Kafka's rules kept here: iterations between 4096 and 16384 for stored credentials; channel
//! binding is not supported (`n,,` or `y,,` only, never `p=`); the `tokenauth` extension
//! (delegation tokens) is refused, since this broker has no delegation tokens; an unknown user
//! fails the same way as a wrong proof, after the client-final message, so a client cannot tell
//! which users exist (RFC 5802 §5.1's `e=unknown-user` is not sent, as in Kafka).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// The fewest iterations a stored credential may use (Kafka's `ScramMechanism.minIterations`).
pub const MIN_ITERATIONS: u32 = 4096;
/// The most iterations a stored credential may use (Kafka's `ScramMechanism.maxIterations`).
pub const MAX_ITERATIONS: u32 = 16384;

/// A SCRAM mechanism, by its SASL name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    Sha256,
    Sha512,
}

impl Mechanism {
    pub const ALL: [Mechanism; 2] = [Mechanism::Sha256, Mechanism::Sha512];

    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's mechanism type in DescribeUserScramCredentials / AlterUserScramCredentials.
    pub fn kafka_type(self) -> i8 {
        match self {
            Mechanism::Sha256 => 1,
            Mechanism::Sha512 => 2,
        }
    }

    pub fn from_kafka_type(t: i8) -> Option<Self> {
        Mechanism::ALL.into_iter().find(|m| m.kafka_type() == t)
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Mechanism::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => Sha256::digest(data).to_vec(),
            Mechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi(password, salt, i)`: PBKDF2 with this mechanism's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => {
                pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec()
            }
            Mechanism::Sha512 => {
                pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec()
            }
        }
    }
}

/// What the broker stores for one user and mechanism: never the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys stand in for the password: keep them out of logs.
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// The credential for `password`, as AlterUserScramCredentials' salted password or
    /// `broker users` computes it.
    pub fn from_password(
        mechanism: Mechanism,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Self {
        let salted = mechanism.salted_password(password, salt, iterations);
        Self::from_salted_password(mechanism, &salted, salt, iterations)
    }

    /// The credential from `SaltedPassword` (what AlterUserScramCredentials upserts carry).
    pub fn from_salted_password(
        mechanism: Mechanism,
        salted_password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Self {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }
}

/// Why an exchange failed. The connection answers every one of them with
/// SASL_AUTHENTICATION_FAILED; the text goes to the log and, for the client's own mistakes,
/// into the error message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(String),
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("SCRAM extension {0:?} is not supported")]
    Extension(String),
    #[error("authentication failed: invalid credentials with SASL mechanism {0}")]
    BadCredentials(&'static str),
    #[error("SCRAM message out of order")]
    OutOfOrder,
}

enum State {
    ExpectClientFirst,
    ExpectClientFinal {
        user: String,
        /// `None` for an unknown user: the exchange goes on with a made-up salt and fails at
        /// the proof, as for a wrong password.
        credential: Option<ScramCredential>,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Done,
}

/// One client's exchange.
pub struct ServerExchange {
    mechanism: Mechanism,
    state: State,
}

impl ServerExchange {
    pub fn new(mechanism: Mechanism) -> Self {
        ServerExchange {
            mechanism,
            state: State::ExpectClientFirst,
        }
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Takes the client-first message and answers the server-first one. `lookup` finds the
    /// user's credential for this mechanism; `server_nonce` is fresh randomness (printable,
    /// no comma).
    pub fn client_first(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
        server_nonce: &str,
    ) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, State::ExpectClientFirst) {
            return Err(ScramError::OutOfOrder);
        }
        self.state = State::Done;
        let text = std::str::from_utf8(message)
            .map_err(|_| ScramError::Malformed("client-first message is not UTF-8".into()))?;
        // gs2-header: gs2-cbind-flag "," [ authzid ] ","
        let mut parts = text.splitn(3, ',');
        let cbind = parts.next().unwrap_or_default();
        let authzid = parts.next().ok_or_else(|| malformed("no gs2 header"))?;
        let bare = parts
            .next()
            .ok_or_else(|| malformed("no client-first-message-bare"))?;
        match cbind {
            "n" | "y" => {}
            c if c.starts_with("p=") => return Err(ScramError::ChannelBinding),
            _ => return Err(malformed("bad gs2-cbind-flag")),
        }
        let mut user = None;
        let mut client_nonce = None;
        for (i, attr) in bare.split(',').enumerate() {
            let (k, v) = attr
                .split_once('=')
                .ok_or_else(|| malformed("attribute without '='"))?;
            match (i, k) {
                (0, "m") => return Err(ScramError::Extension("m".into())),
                (0, "n") => user = Some(decode_saslname(v)?),
                (1, "r") => client_nonce = Some(v.to_string()),
                (i, ext) if i >= 2 => return Err(ScramError::Extension(ext.to_string())),
                _ => return Err(malformed("expected n=<user>,r=<nonce>")),
            }
        }
        let user = user.ok_or_else(|| malformed("no user name"))?;
        let client_nonce = client_nonce.ok_or_else(|| malformed("no nonce"))?;
        if user.is_empty() || client_nonce.is_empty() || !is_printable(&client_nonce) {
            return Err(malformed("empty user name or bad nonce"));
        }
        if !authzid.is_empty() {
            let wanted = authzid
                .strip_prefix("a=")
                .map(decode_saslname)
                .transpose()?
                .ok_or_else(|| malformed("bad authzid"))?;
            if wanted != user {
                // Kafka: "Authentication failed: Client requested an authorization id that is
                // different from username".
                return Err(ScramError::BadCredentials(self.mechanism.name()));
            }
        }
        let credential = lookup(&user);
        let nonce = format!("{client_nonce}{server_nonce}");
        let (salt, iterations) = match &credential {
            Some(c) => (c.salt.clone(), c.iterations),
            // A stable fake salt per user name, so probing the same unknown user twice looks
            // like a real one.
            None => (
                self.mechanism.hash(user.as_bytes())[..16].to_vec(),
                MIN_ITERATIONS,
            ),
        };
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(&salt));
        self.state = State::ExpectClientFinal {
            user,
            credential,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok(server_first.into_bytes())
    }

    /// Takes the client-final message; on a valid proof answers the server-final message and
    /// the authenticated user name.
    pub fn client_final(&mut self, message: &[u8]) -> Result<(Vec<u8>, String), ScramError> {
        let State::ExpectClientFinal {
            user,
            credential,
            client_first_bare,
            server_first,
            nonce,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(ScramError::OutOfOrder);
        };
        let text = std::str::from_utf8(message)
            .map_err(|_| ScramError::Malformed("client-final message is not UTF-8".into()))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| malformed("no proof"))?;
        let mut attrs = without_proof.split(',');
        let channel = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or_else(|| malformed("no channel binding attribute"))?;
        let got_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or_else(|| malformed("no nonce"))?;
        if let Some(ext) = attrs.next() {
            return Err(ScramError::Extension(
                ext.split('=').next().unwrap_or_default().to_string(),
            ));
        }
        // Without channel binding the client sends its gs2 header back: "n,," or "y,,".
        let channel = B64
            .decode(channel)
            .map_err(|_| malformed("channel binding is not base64"))?;
        if channel != b"n,," && channel != b"y,," {
            return Err(ScramError::ChannelBinding);
        }
        // Kafka checks only that the client's nonce ends with the server-first one, and
        // librdkafka relies on it: it sends its own nonce again in front of the whole
        // server-first nonce. The server's fresh part is still required.
        if !got_nonce.ends_with(&nonce) {
            return Err(malformed(
                "the nonce is not the one of the server-first message",
            ));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| malformed("proof is not base64"))?;
        let mechanism = self.mechanism;
        let Some(credential) = credential else {
            return Err(ScramError::BadCredentials(mechanism.name()));
        };
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = mechanism.hmac(&credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(ScramError::BadCredentials(mechanism.name()));
        }
        // ClientKey = ClientProof XOR ClientSignature; valid if H(ClientKey) == StoredKey.
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let stored = mechanism.hash(&client_key);
        if !bool::from(stored.ct_eq(&credential.stored_key)) {
            return Err(ScramError::BadCredentials(mechanism.name()));
        }
        let server_signature = mechanism.hmac(&credential.server_key, auth_message.as_bytes());
        Ok((
            format!("v={}", B64.encode(server_signature)).into_bytes(),
            user,
        ))
    }
}

/// The client side of one SCRAM exchange (RFC 5802), for `broker::client`: client-first, then
/// client-final from the server-first message, then a check of the server's signature, so a
/// client also knows it talks to a server that holds the user's credential.
pub struct ClientExchange {
    mechanism: Mechanism,
    password: Vec<u8>,
    client_first_bare: String,
    nonce: String,
    server_signature: Option<Vec<u8>>,
}

impl ClientExchange {
    /// `nonce` is fresh printable randomness (no `,`).
    pub fn new(mechanism: Mechanism, user: &str, password: &str, nonce: &str) -> Self {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        ClientExchange {
            mechanism,
            password: password.as_bytes().to_vec(),
            client_first_bare: format!("n={user},r={nonce}"),
            nonce: nonce.to_string(),
            server_signature: None,
        }
    }

    /// The client-first message (no channel binding).
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Takes the server-first message and answers the client-final one.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let text = std::str::from_utf8(server_first)
            .map_err(|_| malformed("server-first message is not UTF-8"))?;
        let mut attrs = text.split(',');
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or_else(|| malformed("server-first: no nonce"))?;
        let salt = attrs
            .next()
            .and_then(|a| a.strip_prefix("s="))
            .ok_or_else(|| malformed("server-first: no salt"))?;
        let iterations: u32 = attrs
            .next()
            .and_then(|a| a.strip_prefix("i="))
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| malformed("server-first: no iteration count"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(malformed(
                "server-first: the nonce does not extend the client's",
            ));
        }
        if !(1..=MAX_ITERATIONS * 64).contains(&iterations) {
            return Err(malformed("server-first: iteration count out of range"));
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| malformed("server-first: salt is not base64"))?;
        let m = self.mechanism;
        let salted = m.salted_password(&self.password, &salt, iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let client_signature = m.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = m.hmac(&salted, b"Server Key");
        self.server_signature = Some(m.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message's signature.
    pub fn server_final(&self, message: &[u8]) -> Result<(), ScramError> {
        let text = std::str::from_utf8(message)
            .map_err(|_| malformed("server-final message is not UTF-8"))?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(ScramError::Malformed(format!("server refused: {e}")));
        }
        let got = text
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| malformed("server-final: no verifier"))?;
        let want = self
            .server_signature
            .as_ref()
            .ok_or(ScramError::OutOfOrder)?;
        if bool::from(got.ct_eq(want)) {
            Ok(())
        } else {
            Err(malformed("server-final: the server's signature is wrong"))
        }
    }
}

#[cfg(test)]
mod client_tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example, from the client's side.
    #[test]
    fn rfc7677_test_vector() {
        let mut c =
            ClientExchange::new(Mechanism::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(c.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let fin = c.client_final(server_first).unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(c
            .server_final(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .is_err());
        assert!(c.server_final(b"e=invalid-proof").is_err());
    }

    #[test]
    fn a_server_first_not_extending_our_nonce_is_refused() {
        let mut c = ClientExchange::new(Mechanism::Sha512, "u", "p", "abc");
        assert!(c.client_final(b"r=xyz,s=AAAA,i=4096").is_err());
        assert!(c.client_final(b"r=abc,s=AAAA,i=4096").is_err());
        assert!(c.client_final(b"garbage").is_err());
        assert!(c.client_final(b"r=abcd,s=AAAA,i=0").is_err());
    }
}

fn malformed(what: &str) -> ScramError {
    ScramError::Malformed(what.to_string())
}

fn is_printable(s: &str) -> bool {
    s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// `saslname`: `=2C` is ',' and `=3D` is '='; any other '=' is an error (RFC 5802 §5.1).
fn decode_saslname(s: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(malformed("bad '=' escape in user name")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client as RFC 5802 describes it, for the tests.
    fn client_proof(
        mechanism: Mechanism,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
        client_final_without_proof: &str,
    ) -> (String, Vec<u8>) {
        let attrs: Vec<&str> = server_first.split(',').collect();
        let salt = B64.decode(&attrs[1][2..]).unwrap();
        let iterations: u32 = attrs[2][2..].parse().unwrap();
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        let client_key = mechanism.hmac(&salted, b"Client Key");
        let stored_key = mechanism.hash(&client_key);
        let auth = format!("{client_first_bare},{server_first},{client_final_without_proof}");
        let signature = mechanism.hmac(&stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = mechanism.hmac(&salted, b"Server Key");
        (
            format!("{client_final_without_proof},p={}", B64.encode(proof)),
            mechanism.hmac(&server_key, auth.as_bytes()),
        )
    }

    /// librdkafka's client-final repeats its own nonce before the server-first nonce; Kafka
    /// accepts that, and so do we. A nonce without the server's part is still refused.
    #[test]
    fn librdkafka_nonce_prefix_is_accepted() {
        let credential = ScramCredential::from_password(Mechanism::Sha256, b"pw", b"salt", 4096);
        for (prefix, ok) in [("cn", true), ("", true), ("cn", false)] {
            let mut ex = ServerExchange::new(Mechanism::Sha256);
            let first = ex
                .client_first(b"n,,n=u,r=cn", |_| Some(credential.clone()), "SN")
                .unwrap();
            let first = String::from_utf8(first).unwrap();
            let nonce = if ok {
                format!("{prefix}cnSN")
            } else {
                "cn".to_string()
            };
            let (last, _) = client_proof(
                Mechanism::Sha256,
                "pw",
                "n=u,r=cn",
                &first,
                &format!("c=biws,r={nonce}"),
            );
            assert_eq!(ex.client_final(last.as_bytes()).is_ok(), ok, "{nonce}");
        }
    }

    /// RFC 7677 §3's example exchange, byte for byte.
    #[test]
    fn rfc_7677_example() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credential = ScramCredential::from_password(Mechanism::Sha256, b"pencil", &salt, 4096);
        let mut ex = ServerExchange::new(Mechanism::Sha256);
        let first = ex
            .client_first(
                b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
                |u| (u == "user").then(|| credential.clone()),
                "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            )
            .unwrap();
        assert_eq!(
            first,
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let (last, user) = ex
            .client_final(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(last, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        assert_eq!(user, "user");
    }

    #[test]
    fn both_mechanisms_accept_the_password_and_refuse_anything_else() {
        for mechanism in Mechanism::ALL {
            let credential = ScramCredential::from_password(
                mechanism,
                b"alice-secret",
                b"0123456789abcdef",
                4096,
            );
            for (user, password, ok) in [
                ("alice", "alice-secret", true),
                ("alice", "wrong", false),
                ("mallory", "alice-secret", false),
            ] {
                let mut ex = ServerExchange::new(mechanism);
                let bare = format!("n={user},r=abcdefgh");
                let first = ex
                    .client_first(
                        format!("n,,{bare}").as_bytes(),
                        |u| (u == "alice").then(|| credential.clone()),
                        "SERVERNONCE",
                    )
                    .unwrap();
                let first = String::from_utf8(first).unwrap();
                let (last, signature) = client_proof(
                    mechanism,
                    password,
                    &bare,
                    &first,
                    "c=biws,r=abcdefghSERVERNONCE",
                );
                match ex.client_final(last.as_bytes()) {
                    Ok((v, who)) => {
                        assert!(ok, "{user}/{password} accepted");
                        assert_eq!(who, user);
                        assert_eq!(v, format!("v={}", B64.encode(signature)).into_bytes());
                    }
                    Err(e) => {
                        assert!(!ok, "{user}/{password}: {e}");
                        assert_eq!(e, ScramError::BadCredentials(mechanism.name()));
                    }
                }
            }
        }
    }

    #[test]
    fn an_unknown_user_looks_like_a_known_one_until_the_proof() {
        let mut a = ServerExchange::new(Mechanism::Sha512);
        let mut b = ServerExchange::new(Mechanism::Sha512);
        let one = a.client_first(b"n,,n=ghost,r=x", |_| None, "s").unwrap();
        let two = b.client_first(b"n,,n=ghost,r=x", |_| None, "s").unwrap();
        assert_eq!(one, two);
        assert!(String::from_utf8(one).unwrap().ends_with(",i=4096"));
    }

    #[test]
    fn garbage_and_unsupported_features_are_errors_never_panics() {
        let cases: &[&[u8]] = &[
            b"",
            b"n",
            b"n,,",
            b"x,,n=a,r=b",
            b"p=tls-unique,,n=a,r=b",
            b"n,,m=ext,n=a,r=b",
            b"n,,n=a,r=b,tokenauth=true",
            b"n,,n=a=ZZ,r=b",
            b"n,,n=,r=b",
            b"n,,r=b,n=a",
            b"n,a=bob,n=alice,r=b",
            b"\xff\xfe",
            b"n,,n=a,r=b,c",
        ];
        for case in cases {
            let mut ex = ServerExchange::new(Mechanism::Sha256);
            let r = ex.client_first(case, |_| None, "s");
            assert!(r.is_err(), "{:?} accepted", String::from_utf8_lossy(case));
            // After a failure nothing more is accepted.
            assert!(ex.client_final(b"c=biws,r=bs,p=AAAA").is_err());
        }
        let credential = ScramCredential::from_password(Mechanism::Sha256, b"p", b"salt", 4096);
        for last in [
            &b""[..],
            b"c=biws,r=wrongnonce,p=AAAA",
            b"c=biws,r=bs",
            b"c=cD10bHMtdW5pcXVlLCw=,r=bs,p=AAAA",
            b"c=biws,r=bs,p=!!!",
            b"c=biws,r=bs,p=AAAA",
            b"c=biws,r=bs,x=1,p=AAAA",
        ] {
            let mut ex = ServerExchange::new(Mechanism::Sha256);
            ex.client_first(b"n,,n=a,r=b", |_| Some(credential.clone()), "s")
                .unwrap();
            assert!(
                ex.client_final(last).is_err(),
                "{:?}",
                String::from_utf8_lossy(last)
            );
            assert_eq!(ex.client_final(last), Err(ScramError::OutOfOrder));
        }
    }

    #[test]
    fn escaped_user_names() {
        assert_eq!(decode_saslname("a=2Cb=3Dc").unwrap(), "a,b=c");
        assert!(decode_saslname("a=2").is_err());
        assert!(decode_saslname("a=").is_err());
    }

    #[test]
    fn credentials_do_not_print_their_keys() {
        let c = ScramCredential::from_password(Mechanism::Sha256, b"p", b"salt", 4096);
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("stored_key") && shown.contains("4096"),
            "{shown}"
        );
    }
}
