//! A participant's registered Ed25519 public key as configuration writes it (`TryFrom<String>`,
//! what serde uses, and `FromStr`), from arbitrary UTF-8 text.
//!
//! Checks, beyond "never panics": both ways of parsing agree; a key is accepted exactly when the
//! text is 64 hex digits (either case); an accepted key prints as the lower-case text, which parses
//! back to the same key.
#![no_main]

use corridor_schemas::ParticipantKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let parsed = text.parse::<ParticipantKey>();
    let converted = ParticipantKey::try_from(text.to_owned());
    assert_eq!(parsed, converted, "FromStr and TryFrom<String> disagree on {text:?}");

    let is_key_text = text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit());
    match parsed {
        Ok(key) => {
            assert!(is_key_text, "{text:?} was accepted as a key");
            let written = key.to_string();
            assert_eq!(written, text.to_ascii_lowercase());
            assert_eq!(written.parse::<ParticipantKey>(), Ok(key));
            assert_eq!(String::from(key), written);
        }
        Err(error) => {
            assert!(!is_key_text, "{text:?} was refused: {error}");
            // The message quotes at most 80 characters of the text, whatever its length.
            let _ = error.to_string();
        }
    }
});
