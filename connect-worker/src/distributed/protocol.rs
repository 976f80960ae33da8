//! Kafka Connect's group protocol formats, byte for byte.
//!
//! The group coordinator only stores and forwards these bytes, so they must be Kafka Connect's
//! for a mixed group (or a stock tool reading the group) to understand them. Three protocols
//! are offered in JoinGroup, newest first, and the coordinator picks the newest every member
//! supports:
//!
//! | name         | version | metadata                               | assignment                         |
//! |--------------|---------|----------------------------------------|------------------------------------|
//! | `sessioned`  | 2       | header, url, config offset, allocation | header, ASSIGNMENT_V1 with revoked |
//! | `compatible` | 1       | as v2                                  | as v2                              |
//! | `default`    | 0       | header, url, config offset             | header, ASSIGNMENT_V0              |
//!
//! Strings are int16-length-prefixed UTF-8, arrays int32-count-prefixed (`-1` is null), the
//! allocation is nullable bytes holding the worker's previous assignment (itself a versioned
//! assignment, or null when empty). A connector's own instance is the task id `-1`
//! ([`CONNECTOR_TASK`]) in an assignment's task list, as in Kafka.
//!
//! Decoding is bounded: lengths are checked against the bytes left before anything is
//! allocated, so a forged length is an error, not an allocation.

use std::collections::BTreeMap;

/// The task id that stands for the connector instance itself in an assignment.
pub const CONNECTOR_TASK: i32 = -1;
/// `Assignment.NO_ERROR`.
pub const NO_ERROR: i16 = 0;
/// `Assignment.CONFIG_MISMATCH`: the leader could not read the config topic to the offset the
/// members need; members re-read it and rejoin.
pub const CONFIG_MISMATCH: i16 = 1;

/// The group's protocol type (JoinGroup `protocol_type`).
pub const PROTOCOL_TYPE: &str = "connect";

/// One of Kafka Connect's group protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConnectProtocol {
    /// v0, `ConnectProtocol`: eager rebalancing, every member stops everything each round.
    Eager,
    /// v1, incremental cooperative rebalancing (KIP-415).
    Compatible,
    /// v2, as v1 with session keys for internal requests (KIP-507).
    Sessioned,
}

impl ConnectProtocol {
    /// The name in JoinGroup's protocol list (Kafka's `ConnectProtocolCompatibility`).
    pub fn name(self) -> &'static str {
        match self {
            ConnectProtocol::Eager => "default",
            ConnectProtocol::Compatible => "compatible",
            ConnectProtocol::Sessioned => "sessioned",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "default" | "eager" => Some(ConnectProtocol::Eager),
            "compatible" => Some(ConnectProtocol::Compatible),
            "sessioned" => Some(ConnectProtocol::Sessioned),
            _ => None,
        }
    }

    /// The version in the header of this protocol's metadata and assignments.
    pub fn version(self) -> i16 {
        match self {
            ConnectProtocol::Eager => 0,
            ConnectProtocol::Compatible => 1,
            ConnectProtocol::Sessioned => 2,
        }
    }

    fn from_version(version: i16) -> Result<Self, ProtocolError> {
        match version {
            0 => Ok(ConnectProtocol::Eager),
            1 => Ok(ConnectProtocol::Compatible),
            // Kafka parses any newer version with the latest schema it knows.
            v if v >= 2 => Ok(ConnectProtocol::Sessioned),
            v => Err(ProtocolError::UnsupportedVersion(v)),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("Unsupported connect protocol version: {0}")]
    UnsupportedVersion(i16),
    #[error("connect protocol data ends early reading {0}")]
    Truncated(&'static str),
    #[error("connect protocol data has a negative length for {0}")]
    NegativeLength(&'static str),
    #[error("connect protocol string {0} is not UTF-8")]
    NotUtf8(&'static str),
    #[error("connect protocol field {0} is null")]
    UnexpectedNull(&'static str),
}

/// A connector's tasks (and, with [`CONNECTOR_TASK`], the connector itself) by connector name.
pub type ConnectorTasks = BTreeMap<String, Vec<i32>>;

/// What a worker tells the group when it joins (`ExtendedWorkerState`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkerState {
    /// The worker's advertised REST URL, where followers forward writes when it leads.
    pub url: String,
    /// The config topic offset the worker has read to.
    pub config_offset: i64,
    /// What the worker runs now (v1/v2 only; v0 carries none).
    pub assignment: Option<Assignment>,
}

/// The leader's answer to one member (`ExtendedAssignment`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    pub error: i16,
    pub leader: String,
    pub leader_url: String,
    /// The config topic offset the member must read to before it runs anything.
    pub config_offset: i64,
    /// Connectors and tasks newly given to the member (v0: everything it runs).
    pub assigned: ConnectorTasks,
    /// Connectors and tasks the member must stop (v1/v2).
    pub revoked: ConnectorTasks,
    /// Milliseconds until the leader's scheduled rebalance, 0 when none (v1/v2).
    pub delay_ms: i32,
}

impl Assignment {
    fn is_empty(&self) -> bool {
        *self == Assignment::default()
    }
}

/// Encodes a worker's JoinGroup metadata for `protocol`.
pub fn encode_metadata(protocol: ConnectProtocol, state: &WorkerState) -> Vec<u8> {
    let mut out = Vec::new();
    put_i16(&mut out, protocol.version());
    put_string(&mut out, &state.url);
    put_i64(&mut out, state.config_offset);
    if protocol != ConnectProtocol::Eager {
        match state.assignment.as_ref().filter(|a| !a.is_empty()) {
            Some(assignment) => {
                let bytes = encode_assignment(protocol, assignment);
                put_i32(&mut out, len_i32(bytes.len()));
                out.extend_from_slice(&bytes);
            }
            None => put_i32(&mut out, -1),
        }
    }
    out
}

/// Decodes a member's JoinGroup metadata (any version).
pub fn decode_metadata(bytes: &[u8]) -> Result<WorkerState, ProtocolError> {
    let mut r = Reader { buf: bytes };
    let version = ConnectProtocol::from_version(r.i16("version")?)?;
    let url = r.string("url")?;
    let config_offset = r.i64("config_offset")?;
    let assignment = if version == ConnectProtocol::Eager || r.buf.is_empty() {
        None
    } else {
        match r.nullable_bytes("allocation")? {
            Some(allocation) => Some(decode_assignment(allocation)?),
            None => None,
        }
    };
    Ok(WorkerState {
        url,
        config_offset,
        assignment,
    })
}

/// Encodes the leader's SyncGroup assignment for one member.
pub fn encode_assignment(protocol: ConnectProtocol, assignment: &Assignment) -> Vec<u8> {
    let mut out = Vec::new();
    put_i16(&mut out, protocol.version());
    put_i16(&mut out, assignment.error);
    put_string(&mut out, &assignment.leader);
    put_string(&mut out, &assignment.leader_url);
    put_i64(&mut out, assignment.config_offset);
    put_connector_tasks(&mut out, &assignment.assigned);
    if protocol != ConnectProtocol::Eager {
        put_connector_tasks(&mut out, &assignment.revoked);
        put_i32(&mut out, assignment.delay_ms);
    }
    out
}

/// Decodes a SyncGroup assignment (any version).
pub fn decode_assignment(bytes: &[u8]) -> Result<Assignment, ProtocolError> {
    let mut r = Reader { buf: bytes };
    let version = ConnectProtocol::from_version(r.i16("version")?)?;
    let error = r.i16("error")?;
    let leader = r.string("leader")?;
    let leader_url = r.string("leader_url")?;
    let config_offset = r.i64("config_offset")?;
    let assigned = r.connector_tasks("assignment")?;
    let (revoked, delay_ms) = if version == ConnectProtocol::Eager {
        (ConnectorTasks::new(), 0)
    } else {
        // Kafka's v1 schema tolerates missing trailing fields with their defaults.
        let revoked = if r.buf.is_empty() {
            ConnectorTasks::new()
        } else {
            r.connector_tasks("revoked")?
        };
        let delay = if r.buf.is_empty() { 0 } else { r.i32("delay")? };
        (revoked, delay)
    };
    Ok(Assignment {
        error,
        leader,
        leader_url,
        config_offset,
        assigned,
        revoked,
        delay_ms,
    })
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

fn put_i16(out: &mut Vec<u8>, v: i16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    // Kafka's STRING is at most i16::MAX bytes; names and URLs are far shorter, and a longer
    // one is cut at a character boundary rather than written with a wrong length.
    let mut end = s.len().min(i16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    put_i16(out, end as i16);
    out.extend_from_slice(&s.as_bytes()[..end]);
}

/// Writes connector assignments; an empty map is written as an empty array (as Kafka does for
/// a non-null empty assignment).
fn put_connector_tasks(out: &mut Vec<u8>, tasks: &ConnectorTasks) {
    put_i32(out, len_i32(tasks.len()));
    for (connector, ids) in tasks {
        put_string(out, connector);
        put_i32(out, len_i32(ids.len()));
        for id in ids {
            put_i32(out, *id);
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], ProtocolError> {
        if self.buf.len() < n {
            return Err(ProtocolError::Truncated(field));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, ProtocolError> {
        let b = self.take(2, field)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, ProtocolError> {
        let b = self.take(4, field)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, ProtocolError> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    fn string(&mut self, field: &'static str) -> Result<String, ProtocolError> {
        let len = self.i16(field)?;
        if len < 0 {
            return Err(ProtocolError::UnexpectedNull(field));
        }
        let bytes = self.take(len as usize, field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ProtocolError::NotUtf8(field))
    }

    fn nullable_bytes(&mut self, field: &'static str) -> Result<Option<&'a [u8]>, ProtocolError> {
        let len = self.i32(field)?;
        if len < 0 {
            return Ok(None);
        }
        self.take(len as usize, field).map(Some)
    }

    /// An array count, checked against the bytes left (each element takes at least
    /// `min_element` bytes) before anything is allocated; null reads as empty.
    fn count(&mut self, field: &'static str, min_element: usize) -> Result<usize, ProtocolError> {
        let n = self.i32(field)?;
        if n < 0 {
            return Ok(0);
        }
        let n = n as usize;
        if n.saturating_mul(min_element) > self.buf.len() {
            return Err(ProtocolError::Truncated(field));
        }
        Ok(n)
    }

    fn connector_tasks(&mut self, field: &'static str) -> Result<ConnectorTasks, ProtocolError> {
        let n = self.count(field, 6)?;
        let mut out = ConnectorTasks::new();
        for _ in 0..n {
            let connector = self.string(field)?;
            let m = self.count(field, 4)?;
            let mut ids = Vec::with_capacity(m);
            for _ in 0..m {
                ids.push(self.i32(field)?);
            }
            out.entry(connector).or_default().extend(ids);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks(items: &[(&str, &[i32])]) -> ConnectorTasks {
        items
            .iter()
            .map(|(c, ids)| (c.to_string(), ids.to_vec()))
            .collect()
    }

    fn sample_assignment() -> Assignment {
        Assignment {
            error: NO_ERROR,
            leader: "worker-1".into(),
            leader_url: "http://w1:8083/".into(),
            config_offset: 42,
            assigned: tasks(&[("orders-sink", &[CONNECTOR_TASK, 0, 1])]),
            revoked: tasks(&[("users-source", &[2])]),
            delay_ms: 1500,
        }
    }

    /// The v1 metadata of Kafka's `IncrementalCooperativeConnectProtocol.serializeMetadata` for
    /// url "u", offset 7 and no assignment, written out by hand from its schema.
    #[test]
    fn metadata_v1_matches_kafkas_layout() {
        let state = WorkerState {
            url: "u".into(),
            config_offset: 7,
            assignment: None,
        };
        let bytes = encode_metadata(ConnectProtocol::Compatible, &state);
        let expected: Vec<u8> = [
            &[0, 1][..],               // version
            &[0, 1, b'u'],             // url
            &[0, 0, 0, 0, 0, 0, 0, 7], // config offset
            &[0xff, 0xff, 0xff, 0xff], // null allocation
        ]
        .concat();
        assert_eq!(bytes, expected);
        assert_eq!(decode_metadata(&bytes), Ok(state));
    }

    #[test]
    fn assignment_v0_matches_kafkas_layout() {
        let a = Assignment {
            leader: "l".into(),
            leader_url: "h".into(),
            config_offset: 1,
            assigned: tasks(&[("c", &[CONNECTOR_TASK])]),
            ..Assignment::default()
        };
        let bytes = encode_assignment(ConnectProtocol::Eager, &a);
        let expected: Vec<u8> = [
            &[0, 0][..],               // version
            &[0, 0],                   // error
            &[0, 1, b'l'],             // leader
            &[0, 1, b'h'],             // leader url
            &[0, 0, 0, 0, 0, 0, 0, 1], // config offset
            &[0, 0, 0, 1],             // one connector
            &[0, 1, b'c'],
            &[0, 0, 0, 1],             // one task id
            &[0xff, 0xff, 0xff, 0xff], // -1: the connector itself
        ]
        .concat();
        assert_eq!(bytes, expected);
        assert_eq!(decode_assignment(&bytes), Ok(a));
    }

    #[test]
    fn every_version_round_trips() {
        for protocol in [ConnectProtocol::Compatible, ConnectProtocol::Sessioned] {
            let a = sample_assignment();
            let bytes = encode_assignment(protocol, &a);
            assert_eq!(&bytes[..2], &protocol.version().to_be_bytes());
            assert_eq!(decode_assignment(&bytes), Ok(a.clone()));
            let state = WorkerState {
                url: "http://w2:8084/".into(),
                config_offset: 9,
                assignment: Some(a),
            };
            let meta = encode_metadata(protocol, &state);
            assert_eq!(decode_metadata(&meta), Ok(state));
        }
        // v0 carries neither revocations, delay nor the current assignment.
        let a = sample_assignment();
        let decoded = decode_assignment(&encode_assignment(ConnectProtocol::Eager, &a)).unwrap();
        assert_eq!(decoded.assigned, a.assigned);
        assert!(decoded.revoked.is_empty());
        assert_eq!(decoded.delay_ms, 0);
    }

    #[test]
    fn missing_trailing_v1_fields_take_defaults() {
        let a = sample_assignment();
        let mut bytes = encode_assignment(ConnectProtocol::Compatible, &a);
        // Drop revoked and delay, as an old writer tolerated by Kafka's schema would.
        let cut = bytes.len() - 4 - encoded_len(&a.revoked);
        bytes.truncate(cut);
        let decoded = decode_assignment(&bytes).unwrap();
        assert_eq!(decoded.assigned, a.assigned);
        assert!(decoded.revoked.is_empty());
        assert_eq!(decoded.delay_ms, 0);
    }

    fn encoded_len(t: &ConnectorTasks) -> usize {
        let mut v = Vec::new();
        put_connector_tasks(&mut v, t);
        v.len()
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let good = encode_assignment(ConnectProtocol::Sessioned, &sample_assignment());
        // Every truncation fails cleanly (or, past the optional fields, decodes).
        for n in 0..good.len() {
            let _ = decode_assignment(&good[..n]);
            let _ = decode_metadata(&good[..n]);
        }
        assert_eq!(
            decode_assignment(&[0xff, 0xff]),
            Err(ProtocolError::UnsupportedVersion(-1))
        );
        // A forged array count is refused before any allocation.
        let mut forged = Vec::new();
        put_i16(&mut forged, 1);
        put_i16(&mut forged, 0);
        put_string(&mut forged, "l");
        put_string(&mut forged, "u");
        put_i64(&mut forged, 0);
        put_i32(&mut forged, i32::MAX);
        assert_eq!(
            decode_assignment(&forged),
            Err(ProtocolError::Truncated("assignment"))
        );
        let mut bad_utf8 = Vec::new();
        put_i16(&mut bad_utf8, 0);
        put_i16(&mut bad_utf8, 1);
        bad_utf8.push(0xff);
        put_i64(&mut bad_utf8, 0);
        assert_eq!(
            decode_metadata(&bad_utf8),
            Err(ProtocolError::NotUtf8("url"))
        );
    }

    #[test]
    fn protocol_names_are_kafkas() {
        for p in [
            ConnectProtocol::Eager,
            ConnectProtocol::Compatible,
            ConnectProtocol::Sessioned,
        ] {
            assert_eq!(ConnectProtocol::from_name(p.name()), Some(p));
        }
        assert_eq!(ConnectProtocol::from_name("bogus"), None);
    }
}
