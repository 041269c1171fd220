//! Property tests of both MNET envelopes: whatever XML-RPC bytes, wwwroot and timestamp go
//! in, the signed and the encrypted envelope give them back, verify, and never confuse the
//! parser; and the parsers never panic on arbitrary or mangled input.

use std::sync::OnceLock;

use proptest::prelude::*;
use usestats::crypto::{self, CertSubject, Identity};
use usestats::mnet::envelope::{self, DocumentKind};

fn identity() -> &'static (Identity, Identity) {
    static KEYS: OnceLock<(Identity, Identity)> = OnceLock::new();
    KEYS.get_or_init(|| {
        crypto::init().unwrap();
        let subject = |w: &str| CertSubject {
            wwwroot: w.into(),
            organisation: "props".into(),
            country: "NZ".into(),
            state: "W".into(),
            locality: "W".into(),
            email: String::new(),
        };
        (
            crypto::generate_identity(&subject("http://127.0.0.1:1"), 1, 1_800_000_000).unwrap(),
            crypto::generate_identity(&subject("http://127.0.0.1:2"), 1, 1_800_000_000).unwrap(),
        )
    })
}

fn wwwroot() -> impl Strategy<Value = String> {
    (
        "(http|https)",
        "[a-z0-9.-]{1,30}",
        proptest::option::of(1u16..65535),
        "(/[A-Za-z0-9_.~-]{1,12}){0,3}",
    )
        .prop_map(|(scheme, host, port, path)| match port {
            Some(p) => format!("{scheme}://{host}:{p}{path}"),
            None => format!("{scheme}://{host}{path}"),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn signed_envelope_round_trips(xmlrpc in proptest::collection::vec(any::<u8>(), 0..4096), root in wwwroot(), ts in 0i64..4_000_000_000) {
        let (sender, _) = identity();
        let document = envelope::build_signed(&xmlrpc, &sender.key, &root, ts).unwrap();
        prop_assert_eq!(envelope::document_kind(&document), DocumentKind::Signed);
        prop_assert!(envelope::looks_signed(&document));
        let parsed = envelope::parse_signed(&document).unwrap();
        prop_assert_eq!(&parsed.object, &xmlrpc);
        prop_assert_eq!(&parsed.wwwroot, &root);
        prop_assert_eq!(parsed.timestamp, ts);
        let digest = envelope::digest_hex(&xmlrpc);
        prop_assert_eq!(parsed.digest.as_deref(), Some(digest.as_str()));
        prop_assert!(crypto::verify_sha1(&sender.public_key().unwrap(), &parsed.object, &parsed.signature));
    }

    #[test]
    fn encrypted_envelope_round_trips(signed in proptest::collection::vec(any::<u8>(), 0..4096), root in wwwroot()) {
        let (sender, recipient) = identity();
        // The receiver only accepts a key that yields a signed document, so wrap one.
        let inner = envelope::build_signed(&signed, &sender.key, &root, 1).unwrap();
        let body = envelope::build_encrypted(&inner, &recipient.public_key().unwrap(), &root).unwrap();
        prop_assert_eq!(envelope::document_kind(&body), DocumentKind::Encrypted);
        let message = envelope::parse_encrypted(&body).unwrap();
        prop_assert_eq!(&message.wwwroot, &root);
        let (plain, index) = envelope::open_with(&message, [&sender.key, &recipient.key]).unwrap();
        prop_assert_eq!(index, 1, "only the recipient's key opens it");
        prop_assert_eq!(plain, inner);
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = envelope::document_kind(&bytes);
        let _ = envelope::parse_signed(&bytes);
        let _ = envelope::parse_encrypted(&bytes);
        let _ = envelope::looks_signed(&bytes);
    }

    #[test]
    fn parsers_never_panic_on_mangled_envelopes(cut in 0usize..6000, flips in proptest::collection::vec((0usize..6000, any::<u8>()), 0..8)) {
        let (sender, recipient) = identity();
        let inner = envelope::build_signed(b"<?xml version=\"1.0\"?><methodCall/>", &sender.key, "http://x", 5).unwrap();
        let body = envelope::build_encrypted(&inner, &recipient.public_key().unwrap(), "http://x").unwrap();
        for document in [inner, body] {
            let mut mangled = document.clone();
            for (at, byte) in &flips {
                if let Some(b) = mangled.get_mut(*at) {
                    *b = *byte;
                }
            }
            mangled.truncate(cut.min(mangled.len()));
            let _ = envelope::parse_signed(&mangled);
            if let Ok(message) = envelope::parse_encrypted(&mangled) {
                let _ = envelope::open_with(&message, [&recipient.key]);
            }
        }
    }
}
