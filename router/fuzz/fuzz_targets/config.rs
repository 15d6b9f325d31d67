//! The router's configuration file (`network.toml`), from arbitrary UTF-8 text:
//! `Config::from_toml` parses and validates it.
//!
//! Checks, beyond "never panics" (on the way in, or in writing the error): a configuration that
//! is accepted validates again; every ledger is found by its id; and what validation vouched for
//! can be read back without an error (rate maximums, velocity limits).
#![no_main]

use corridor_router::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let config = match Config::from_toml(text) {
        Ok(config) => config,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    if let Err(error) = config.validate() {
        panic!("an accepted configuration does not validate again: {error}");
    }
    for ledger in &config.ledgers {
        assert!(config.ledger(&ledger.id).is_some_and(|found| found.id == ledger.id));
    }
    for rate in &config.rates {
        assert!(rate.maximum().is_ok(), "an accepted rate has no maximum: {rate:?}");
    }
    for limit in &config.velocity_limits {
        assert!(limit.limit().is_ok(), "an accepted velocity limit is refused: {limit:?}");
    }
    if let Some(sanctions) = &config.sanctions {
        let _ = sanctions.files();
    }
});
