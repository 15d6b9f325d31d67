//! The compliance feed's export format (JSON lines), from arbitrary bytes: `parse_line`,
//! `parse_lines` and the streaming `FeedReader`.
//!
//! Checks, beyond "never panics": every error names a line from 1; `parse_lines` and `FeedReader`
//! agree (the same lines, or both refuse); a decoded line written back with `to_json` is one line
//! that decodes to the same value; and a record's hash input is a function of its value.
#![no_main]

use corridor_compliance::feed::{FeedLine, FeedReader, parse_line, parse_lines};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let streamed: Vec<_> = FeedReader::new(bytes).collect();
    for item in &streamed {
        if let Err(error) = item {
            assert!(error.line >= 1, "{error}");
        }
    }
    assert!(streamed.iter().filter(|item| item.is_err()).count() <= 1, "the reader went on after an error");
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };

    // One line on its own, whatever it holds (line breaks included).
    match parse_line(7, text) {
        Ok(line) => check_round_trip(&line),
        Err(error) => assert_eq!(error.line, 7, "{error}"),
    }

    match parse_lines(text) {
        Ok(lines) => {
            let streamed: Vec<FeedLine> = streamed
                .into_iter()
                .map(|item| item.unwrap_or_else(|error| panic!("parse_lines read what FeedReader refused: {error}")))
                .enumerate()
                .map(|(index, (line, feed_line))| {
                    assert_eq!(line, index + 1);
                    feed_line
                })
                .collect();
            assert_eq!(streamed, lines, "parse_lines and FeedReader read different lines");
            for line in &lines {
                check_round_trip(line);
            }
        }
        Err(error) => {
            assert!(error.line >= 1, "{error}");
            assert!(streamed.iter().any(|item| item.is_err()), "FeedReader read what parse_lines refused: {error}");
        }
    }
});

fn check_round_trip(line: &FeedLine) {
    let json = line.to_json().expect("a decoded line encodes");
    assert!(!json.contains('\n') && !json.contains('\r'), "an encoded line spans lines: {json:?}");
    let again = parse_line(1, &json).unwrap_or_else(|error| panic!("{json:?} does not decode: {error}"));
    assert_eq!(&again, line, "{json:?} decodes to another line");
    if let (FeedLine::Record(record), FeedLine::Record(again)) = (line, &again) {
        assert_eq!(record.canonical_encoding(), again.canonical_encoding());
        assert_eq!(record.computed_hash(), again.computed_hash());
    }
}
