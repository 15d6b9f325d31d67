//! A ledger node's configuration file (`ops/config/ledger-node-*.toml`), from arbitrary UTF-8
//! text: `LedgerNodeConfig::from_toml` parses it and checks the opening balances.
//!
//! Checks, beyond "never panics": an accepted configuration's opening balances are computed again
//! without an error, one per account, none negative, and its description can be taken.
#![no_main]

use corridor_router::ledger_node::LedgerNodeConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let config = match LedgerNodeConfig::from_toml(text) {
        Ok(config) => config,
        Err(error) => {
            let _ = format!("{error:#}");
            return;
        }
    };
    let balances = config.opening_balances().expect("the balances of an accepted configuration");
    assert_eq!(balances.len(), config.accounts.len());
    assert!(balances.iter().all(|(_, minor_units)| *minor_units >= 0), "{balances:?}");
    let _ = config.description();
});
