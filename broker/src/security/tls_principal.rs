//! The principal a verified TLS client certificate names, as Kafka's default principal builder
//! writes it: `User:` followed by the certificate's subject in RFC 2253 form, which is what
//! Java's `X500Principal.getName()` returns (`CN=writer,OU=datasync,O=example`). ACLs written for
//! a Kafka cluster then match here too.
//!
//! RFC 2253 prints the RDNs last-to-first (the most specific, usually CN, first), joins them with
//! `,` (no space) and the attributes of a multi-valued RDN with `+`; it names the attribute types
//! Java names (CN, C, L, ST, O, OU, STREET, DC, UID) and writes any other as its dotted OID with
//! the value as `#` and the hex of its DER encoding. Special characters are escaped with `\`.
//!
//! Only the subject is needed, so a small DER reader walks to it instead of a full X.509 parser:
//! rustls has already verified the certificate by the time this runs.

/// Why a certificate's subject could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the certificate's subject: {0}")]
pub struct SubjectError(&'static str);

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

/// One DER element: its tag, its contents, and the whole encoding.
struct Element<'a> {
    tag: u8,
    contents: &'a [u8],
    encoded: &'a [u8],
}

/// Splits the first DER element off `input`.
fn element(input: &[u8]) -> Result<(Element<'_>, &[u8]), SubjectError> {
    let short = SubjectError("truncated DER");
    let (&tag, rest) = input.split_first().ok_or(short.clone())?;
    let (&first, mut rest) = rest.split_first().ok_or(short.clone())?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(SubjectError("bad DER length"));
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err(short);
    }
    let header = input.len() - rest.len();
    Ok((
        Element {
            tag,
            contents: &rest[..len],
            encoded: &input[..header + len],
        },
        &rest[len..],
    ))
}

fn expect(input: &[u8], tag: u8) -> Result<(Element<'_>, &[u8]), SubjectError> {
    let (e, rest) = element(input)?;
    if e.tag != tag {
        return Err(SubjectError("unexpected DER tag"));
    }
    Ok((e, rest))
}

/// The subject of a DER certificate in RFC 2253 form.
pub fn subject_dn(certificate: &[u8]) -> Result<String, SubjectError> {
    let (cert, _) = expect(certificate, SEQUENCE)?;
    let (tbs, _) = expect(cert.contents, SEQUENCE)?;
    let mut fields = tbs.contents;
    // version [0] EXPLICIT, optional
    if fields.first() == Some(&0xa0) {
        fields = element(fields)?.1;
    }
    // serialNumber, signature, issuer, validity, then subject
    for _ in 0..4 {
        fields = element(fields)?.1;
    }
    let (subject, _) = expect(fields, SEQUENCE)?;
    rfc2253(subject.contents)
}

/// An RDNSequence's contents in RFC 2253 form.
fn rfc2253(mut rdns: &[u8]) -> Result<String, SubjectError> {
    let mut out = Vec::new();
    while !rdns.is_empty() {
        let (set, rest) = expect(rdns, SET)?;
        rdns = rest;
        let mut attrs = set.contents;
        let mut parts = Vec::new();
        while !attrs.is_empty() {
            let (attr, rest) = expect(attrs, SEQUENCE)?;
            attrs = rest;
            let (oid, rest) = expect(attr.contents, OID)?;
            let (value, _) = element(rest)?;
            let oid = dotted(oid.contents)?;
            parts.push(match keyword(&oid) {
                Some(name) => match text(&value) {
                    Some(s) => format!("{name}={}", escape(&s)),
                    None => format!("{name}=#{}", hex(value.encoded)),
                },
                None => format!("{oid}=#{}", hex(value.encoded)),
            });
        }
        out.push(parts.join("+"));
    }
    out.reverse();
    Ok(out.join(","))
}

/// The keywords Java's RFC 2253 output uses.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn dotted(oid: &[u8]) -> Result<String, SubjectError> {
    let (&first, rest) = oid.split_first().ok_or(SubjectError("empty OID"))?;
    let mut arcs = vec![u64::from(first / 40).min(2), 0];
    arcs[1] = u64::from(first) - arcs[0] * 40;
    let mut acc: u64 = 0;
    for &b in rest {
        acc = acc
            .checked_mul(128)
            .ok_or(SubjectError("OID arc too large"))?
            | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
        }
    }
    Ok(arcs
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join("."))
}

/// A directory string's text, for the string types certificates use.
fn text(value: &Element<'_>) -> Option<String> {
    match value.tag {
        // UTF8String, PrintableString, IA5String, NumericString, VisibleString
        0x0c | 0x13 | 0x16 | 0x12 | 0x1a => String::from_utf8(value.contents.to_vec()).ok(),
        // TeletexString: Latin-1 in practice
        0x14 => Some(value.contents.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE
        0x1e if value.contents.len().is_multiple_of(2) => {
            let units: Vec<u16> = value
                .contents
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// RFC 2253 escaping: `,+"\<>;` anywhere, `#` or a space first, a space last.
fn escape(s: &str) -> String {
    let n = s.chars().count();
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == n && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if contents.len() < 0x80 {
            out.push(contents.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(contents.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(contents);
        out
    }

    fn attr(oid: &[u8], tag: u8, value: &str) -> Vec<u8> {
        let mut seq = tlv(OID, oid);
        seq.extend(tlv(tag, value.as_bytes()));
        tlv(SEQUENCE, &seq)
    }

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const OU: &[u8] = &[0x55, 0x04, 0x0b];
    const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];

    /// A certificate skeleton with the given subject RDNs (in encoding order).
    fn certificate(rdns: &[Vec<u8>]) -> Vec<u8> {
        let subject = tlv(SEQUENCE, &rdns.concat());
        let mut tbs = tlv(0xa0, &tlv(0x02, &[2]));
        tbs.extend(tlv(0x02, &[1, 2, 3]));
        tbs.extend(tlv(SEQUENCE, &tlv(OID, &[0x2a, 0x03])));
        tbs.extend(tlv(SEQUENCE, &tlv(SET, &attr(CN, 0x0c, "ca"))));
        tbs.extend(tlv(SEQUENCE, &[]));
        tbs.extend(subject);
        tbs.extend(tlv(SEQUENCE, &[]));
        let mut cert = tlv(SEQUENCE, &tbs);
        cert.extend(tlv(SEQUENCE, &[]));
        tlv(SEQUENCE, &cert)
    }

    #[test]
    fn subject_is_written_most_specific_first_as_java_does() {
        // openssl -subj /O=example/OU=datasync/CN=writer encodes O first.
        let cert = certificate(&[
            tlv(SET, &attr(O, 0x13, "example")),
            tlv(SET, &attr(OU, 0x0c, "datasync")),
            tlv(SET, &attr(CN, 0x0c, "writer")),
        ]);
        assert_eq!(
            subject_dn(&cert).unwrap(),
            "CN=writer,OU=datasync,O=example"
        );
    }

    #[test]
    fn special_characters_multi_valued_rdns_and_unknown_types() {
        let mut multi = attr(CN, 0x0c, "a");
        multi.extend(attr(OU, 0x0c, "b"));
        let cert = certificate(&[
            tlv(SET, &attr(O, 0x0c, "Acme, Inc.")),
            tlv(SET, &attr(EMAIL, 0x16, "a@b")),
            tlv(SET, &multi),
            tlv(SET, &attr(CN, 0x0c, " #x+y ")),
        ]);
        assert_eq!(
            subject_dn(&cert).unwrap(),
            "CN=\\ #x\\+y\\ ,CN=a+OU=b,1.2.840.113549.1.9.1=#1603614062,O=Acme\\, Inc."
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(subject_dn(&[]).is_err());
        assert!(subject_dn(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(subject_dn(&[0x30, 0x03, 0x30, 0x01]).is_err());
        let cert = certificate(&[tlv(SET, &attr(CN, 0x0c, "x"))]);
        for cut in 0..cert.len() {
            let _ = subject_dn(&cert[..cut]);
        }
    }
}
