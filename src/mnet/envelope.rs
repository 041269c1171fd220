//! The two MNET envelopes (docs/protocol.md §4, §5): `signedMessage` and `encryptedMessage`.
//!
//! They look like XML-DSig/XML-Enc but are not: the digest is lower-case hex SHA-1, nothing
//! is canonicalised, and receivers pick elements by name. We emit Moodle's exact template
//! (its receivers match raw element names, P8–P11) and parse strictly with quick-xml,
//! matching local names case-insensitively so that Mahara's and legacy peers' documents
//! are read too.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use openssl::pkey::{PKey, Private, Public};
use quick_xml::events::Event;
use quick_xml::reader::Reader;

use crate::crypto::{self, CryptoError};

/// Envelopes are small and parsed before the caller is known: keep the budget tight.
const ENVELOPE_MAX_DEPTH: usize = 16;
const ENVELOPE_MAX_ELEMENTS: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("not well-formed XML: {0}")]
    NotXml(String),
    #[error("document type declarations are not accepted")]
    DocType,
    #[error("envelope nested too deeply or too many elements")]
    TooLarge,
    #[error("the root element is <{0}>, expected <{1}>")]
    WrongRoot(String, &'static str),
    #[error("<{0}> is missing")]
    Missing(&'static str),
    #[error("<{0}> appears more than once")]
    Duplicate(&'static str),
    #[error("<{0}> is not valid base64")]
    BadBase64(&'static str),
    #[error("<timestamp> is not an integer")]
    BadTimestamp,
    #[error("fewer than two <CipherValue> elements")]
    NoCipherValues,
    #[error(
        "empty <CipherValue>: the sender could not encrypt with RC4 (OpenSSL 3 legacy provider not loaded on its side)"
    )]
    EmptyCipherValue,
}

/// What kind of document a body is, judged by its root element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    Encrypted,
    Signed,
    /// Anything else: plain XML-RPC or junk, left to the XML-RPC parser to judge.
    Other,
}

pub fn document_kind(body: &[u8]) -> DocumentKind {
    let text = decode_text(body);
    let mut reader = Reader::from_str(&text);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                let name = e.local_name();
                let root: &str = name.as_ref();
                return if root.eq_ignore_ascii_case("encryptedMessage") {
                    DocumentKind::Encrypted
                } else if root.eq_ignore_ascii_case("signedMessage") {
                    DocumentKind::Signed
                } else {
                    DocumentKind::Other
                };
            }
            Ok(Event::Eof) | Err(_) => return DocumentKind::Other,
            _ => {}
        }
    }
}

/// Envelopes declare iso-8859-1 and are ASCII in practice; bytes ≥ 0x80 are read as
/// Latin-1 rather than rejected, matching what the declaration promises.
fn decode_text(body: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(body) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => std::borrow::Cow::Owned(body.iter().map(|&b| b as char).collect()),
    }
}

/// One pass over an envelope collecting the text of the elements we care about.
/// `wanted` are local names (case-insensitive); each occurrence's text is returned in
/// document order.
fn collect_texts(
    body: &[u8],
    root: &'static str,
    wanted: &[&str],
) -> Result<Vec<(usize, String)>, EnvelopeError> {
    let text = decode_text(body);
    let mut reader = Reader::from_str(&text);
    let mut collector = Collector::new(root, wanted);
    loop {
        let event = reader.read_event().map_err(|e| {
            EnvelopeError::NotXml(format!("at byte {}: {e}", reader.error_position()))
        })?;
        match event {
            Event::DocType(_) => return Err(EnvelopeError::DocType),
            Event::Start(ref e) | Event::Empty(ref e) => {
                // Compared in place: an envelope has a few dozen elements, and an owned
                // copy of each name was most of the allocations of reading one.
                let name = e.local_name();
                collector.start(name.as_ref(), matches!(event, Event::Empty(_)))?;
            }
            Event::End(e) => collector.end(e.local_name().as_ref()),
            Event::Text(t) => collector.text(&t)?,
            Event::CData(t) => collector.capture(&t),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => named_entity(&r)?.to_string(),
                    Err(e) => return Err(EnvelopeError::NotXml(e.to_string())),
                };
                collector.capture(&resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    collector.finish()
}

/// XML's five named entities; an envelope declares no others.
fn named_entity(name: &str) -> Result<&'static str, EnvelopeError> {
    Ok(match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        other => {
            return Err(EnvelopeError::NotXml(format!("unknown entity &{other};")));
        }
    })
}

/// What [`collect_texts`] has read of an envelope so far.
struct Collector<'w> {
    root: &'static str,
    wanted: &'w [&'w str],
    depth: usize,
    elements: usize,
    seen_root: bool,
    capturing: Option<(usize, String)>,
    found: Vec<(usize, String)>,
}

impl<'w> Collector<'w> {
    fn new(root: &'static str, wanted: &'w [&'w str]) -> Collector<'w> {
        Collector {
            root,
            wanted,
            depth: 0,
            elements: 0,
            seen_root: false,
            capturing: None,
            found: Vec::new(),
        }
    }

    fn start(&mut self, local: &str, is_empty: bool) -> Result<(), EnvelopeError> {
        self.elements += 1;
        if self.elements > ENVELOPE_MAX_ELEMENTS || self.depth >= ENVELOPE_MAX_DEPTH {
            return Err(EnvelopeError::TooLarge);
        }
        if !self.seen_root {
            if !local.eq_ignore_ascii_case(self.root) {
                return Err(EnvelopeError::WrongRoot(local.to_string(), self.root));
            }
            self.seen_root = true;
        } else if self.depth == 0 {
            return Err(EnvelopeError::NotXml("more than one root element".into()));
        }
        let wanted = self
            .wanted
            .iter()
            .position(|w| local.eq_ignore_ascii_case(w));
        if let Some(index) = wanted {
            if is_empty {
                self.found.push((index, String::new()));
            } else if self.capturing.is_none() {
                // Nested wanted elements would be ambiguous; the outer one wins.
                self.capturing = Some((index, String::new()));
            }
        }
        if !is_empty {
            self.depth += 1;
        }
        Ok(())
    }

    fn end(&mut self, local: &str) {
        self.depth = self.depth.saturating_sub(1);
        if let Some((index, _)) = &self.capturing
            && self.wanted[*index].eq_ignore_ascii_case(local)
            && let Some(done) = self.capturing.take()
        {
            self.found.push(done);
        }
    }

    fn text(&mut self, text: &str) -> Result<(), EnvelopeError> {
        if self.capturing.is_none() && self.depth == 0 && !text.trim().is_empty() {
            return Err(EnvelopeError::NotXml(
                "text outside the root element".into(),
            ));
        }
        self.capture(text);
        Ok(())
    }

    fn capture(&mut self, text: &str) {
        if let Some((_, buf)) = self.capturing.as_mut() {
            buf.push_str(text);
        }
    }

    fn finish(self) -> Result<Vec<(usize, String)>, EnvelopeError> {
        if !self.seen_root {
            return Err(EnvelopeError::NotXml("no root element".into()));
        }
        if self.depth != 0 {
            return Err(EnvelopeError::NotXml("unclosed element".into()));
        }
        Ok(self.found)
    }
}

fn decode_b64(text: &str, what: &'static str) -> Result<Vec<u8>, EnvelopeError> {
    // PHP's decoder skips whitespace (P4); so do we, and nothing else. Moodle's own base64
    // has none, so it is decoded without a copy.
    let decoded = if text.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        B64.decode(compact.as_bytes())
    } else {
        B64.decode(text.as_bytes())
    };
    decoded.map_err(|_| EnvelopeError::BadBase64(what))
}

fn single(
    found: &[(usize, String)],
    index: usize,
    name: &'static str,
) -> Result<Option<String>, EnvelopeError> {
    let mut hits = found.iter().filter(|(i, _)| *i == index);
    let first = hits.next().map(|(_, t)| t.clone());
    if hits.next().is_some() {
        return Err(EnvelopeError::Duplicate(name));
    }
    Ok(first)
}

/// A parsed `signedMessage`. `object` holds the exact XML-RPC bytes that were signed (P1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMessage {
    pub object: Vec<u8>,
    pub signature: Vec<u8>,
    pub wwwroot: String,
    pub timestamp: i64,
    pub digest: Option<String>,
}

pub fn parse_signed(body: &[u8]) -> Result<SignedMessage, EnvelopeError> {
    let wanted = [
        "SignatureValue",
        "object",
        "wwwroot",
        "timestamp",
        "DigestValue",
    ];
    let found = collect_texts(body, "signedMessage", &wanted)?;
    let signature =
        single(&found, 0, "SignatureValue")?.ok_or(EnvelopeError::Missing("SignatureValue"))?;
    let object = single(&found, 1, "object")?.ok_or(EnvelopeError::Missing("object"))?;
    let wwwroot = single(&found, 2, "wwwroot")?.ok_or(EnvelopeError::Missing("wwwroot"))?;
    let timestamp = single(&found, 3, "timestamp")?.ok_or(EnvelopeError::Missing("timestamp"))?;
    let digest = single(&found, 4, "DigestValue")?;
    Ok(SignedMessage {
        object: decode_b64(&object, "object")?,
        signature: decode_b64(&signature, "SignatureValue")?,
        wwwroot: wwwroot.trim().to_string(),
        timestamp: timestamp
            .trim()
            .parse()
            .map_err(|_| EnvelopeError::BadTimestamp)?,
        digest: digest.map(|d| d.trim().to_string()),
    })
}

/// A parsed `encryptedMessage`: Moodle takes the last CipherValue as the key and the one
/// before it as the data (P9), whatever else the document holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedMessage {
    pub data: Vec<u8>,
    pub key: Vec<u8>,
    pub wwwroot: String,
}

pub fn parse_encrypted(body: &[u8]) -> Result<EncryptedMessage, EnvelopeError> {
    let found = collect_texts(body, "encryptedMessage", &["CipherValue", "wwwroot"])?;
    let ciphers: Vec<&String> = found
        .iter()
        .filter(|(i, _)| *i == 0)
        .map(|(_, t)| t)
        .collect();
    let wwwroot = single(&found, 1, "wwwroot")?.ok_or(EnvelopeError::Missing("wwwroot"))?;
    if ciphers.len() < 2 {
        return Err(EnvelopeError::NoCipherValues);
    }
    let key_text = ciphers[ciphers.len() - 1];
    let data_text = ciphers[ciphers.len() - 2];
    if key_text.trim().is_empty() || data_text.trim().is_empty() {
        return Err(EnvelopeError::EmptyCipherValue);
    }
    Ok(EncryptedMessage {
        data: decode_b64(data_text, "CipherValue")?,
        key: decode_b64(key_text, "CipherValue")?,
        wwwroot: wwwroot.trim().to_string(),
    })
}

/// Lower-case hex SHA-1 of the XML-RPC bytes (P2).
pub fn digest_hex(xmlrpc: &[u8]) -> String {
    openssl::sha::sha1(xmlrpc)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Moodle's signedMessage template, byte for byte (§4.1).
pub fn build_signed(
    xmlrpc: &[u8],
    key: &PKey<Private>,
    wwwroot: &str,
    timestamp: i64,
) -> Result<Vec<u8>, CryptoError> {
    let signature = crypto::sign_sha1(key, xmlrpc)?;
    Ok(signed_document(
        &digest_hex(xmlrpc),
        &B64.encode(signature),
        &B64.encode(xmlrpc),
        wwwroot,
        timestamp,
    )
    .into_bytes())
}

fn signed_document(digest: &str, signature: &str, object: &str, wwwroot: &str, ts: i64) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>
    <signedMessage>
        <Signature Id=\"MoodleSignature\" xmlns=\"http://www.w3.org/2000/09/xmldsig#\">
            <SignedInfo>
                <CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"/>
                <SignatureMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#rsa-sha1\"/>
                <Reference URI=\"#XMLRPC-MSG\">
                    <DigestMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#sha1\"/>
                    <DigestValue>{digest}</DigestValue>
                </Reference>
            </SignedInfo>
            <SignatureValue>{signature}</SignatureValue>
            <KeyInfo>
                <RetrievalMethod URI=\"{wwwroot}/mnet/publickey.php\"/>
            </KeyInfo>
        </Signature>
        <object ID=\"XMLRPC-MSG\">{object}</object>
        <wwwroot>{wwwroot}</wwwroot>
        <timestamp>{ts}</timestamp>
    </signedMessage>"
    )
}

/// Moodle's encryptedMessage template, byte for byte (§5.1), sealed to `recipient`.
pub fn build_encrypted(
    signed: &[u8],
    recipient: &PKey<Public>,
    wwwroot: &str,
) -> Result<Vec<u8>, CryptoError> {
    let (data, key) = crypto::seal(recipient, signed)?;
    Ok(encrypted_document(&B64.encode(data), &B64.encode(key), wwwroot).into_bytes())
}

fn encrypted_document(data: &str, key: &str, wwwroot: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>
    <encryptedMessage>
        <EncryptedData Id=\"ED\" xmlns=\"http://www.w3.org/2001/04/xmlenc#\">
            <EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#arcfour\"/>
            <ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">
                <ds:RetrievalMethod URI=\"#EK\" Type=\"http://www.w3.org/2001/04/xmlenc#EncryptedKey\"/>
                <ds:KeyName>XMLENC</ds:KeyName>
            </ds:KeyInfo>
            <CipherData>
                <CipherValue>{data}</CipherValue>
            </CipherData>
        </EncryptedData>
        <EncryptedKey Id=\"EK\" xmlns=\"http://www.w3.org/2001/04/xmlenc#\">
            <EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#rsa-1_5\"/>
            <ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">
                <ds:KeyName>SSLKEY</ds:KeyName>
            </ds:KeyInfo>
            <CipherData>
                <CipherValue>{key}</CipherValue>
            </CipherData>
            <ReferenceList>
                <DataReference URI=\"#ED\"/>
            </ReferenceList>
            <CarriedKeyName>XMLENC</CarriedKeyName>
        </EncryptedKey>
        <wwwroot>{wwwroot}</wwwroot>
    </encryptedMessage>"
    )
}

/// Moodle's client insists on `<signedMessage>` within the first 100 bytes at an offset
/// greater than 0 (P8). The same test tells a correctly opened message from the garbage a
/// wrong key yields under OpenSSL's implicit rejection (P20).
pub fn looks_signed(plaintext: &[u8]) -> bool {
    let head = &plaintext[..plaintext.len().min(100)];
    head.windows(b"<signedMessage>".len())
        .position(|w| w == b"<signedMessage>")
        .is_some_and(|pos| pos > 0)
}

/// Try to open an encrypted message with each key in turn. Returns the plaintext and the
/// index of the key that opened it (0 = current, > 0 = archived).
pub fn open_with<'k>(
    message: &EncryptedMessage,
    keys: impl IntoIterator<Item = &'k PKey<Private>>,
) -> Option<(Vec<u8>, usize)> {
    for (index, key) in keys.into_iter().enumerate() {
        if let Ok(plain) = crypto::open(key, &message.key, &message.data)
            && (looks_signed(&plain) || document_kind(&plain) == DocumentKind::Signed)
        {
            return Some((plain, index));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_the_spec_vector() {
        let xml = "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<methodCall>\n<methodName>local/sample/rpclib.php/sample_fn</methodName>\n<params>\n<param>\n<value><struct>\n<member><name>username</name>\n<value><string>jody</string></value>\n</member>\n<member><name>email</name>\n<value><string>jody@example.org</string></value>\n</member>\n</struct></value>\n</param>\n<param>\n<value><string>alpha</string></value>\n</param>\n<param>\n<value><string>beta &amp; gamma</string></value>\n</param>\n<param>\n<value><int>42</int></value>\n</param>\n</params>\n</methodCall>";
        assert_eq!(xml.len(), 525);
        assert_eq!(
            digest_hex(xml.as_bytes()),
            "1f7c5806ab83d1953053af8dc9e5a0f4f43a5375"
        );
        assert!(
            B64.encode(xml)
                .starts_with("PD94bWwgdmVyc2lvbj0iMS4wIiBlbmNvZGluZz0idXRmLTgiID8+Cjxt")
        );
        assert_eq!(B64.encode(xml).len(), 700);
    }

    #[test]
    fn rejects_hostile_documents() {
        let bomb = b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><signedMessage>&a;</signedMessage>";
        assert_eq!(parse_signed(bomb), Err(EnvelopeError::DocType));
        let deep = format!("<signedMessage>{}", "<a>".repeat(100));
        assert_eq!(parse_signed(deep.as_bytes()), Err(EnvelopeError::TooLarge));
        assert!(matches!(
            parse_signed(b"<methodCall/>"),
            Err(EnvelopeError::WrongRoot(..))
        ));
        assert!(matches!(
            parse_signed(b"\xff\xfe junk"),
            Err(EnvelopeError::NotXml(_))
        ));
        let two = b"<signedMessage><wwwroot>a</wwwroot><wwwroot>b</wwwroot></signedMessage>";
        assert!(matches!(
            parse_signed(two),
            Err(EnvelopeError::Duplicate(_)) | Err(EnvelopeError::Missing(_))
        ));
        let empty = b"<encryptedMessage><CipherValue></CipherValue><CipherValue></CipherValue><wwwroot>x</wwwroot></encryptedMessage>";
        assert_eq!(parse_encrypted(empty), Err(EnvelopeError::EmptyCipherValue));
    }
}
