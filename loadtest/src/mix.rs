//! The payment mix: which kinds of payment a run sends, in what proportions, and how each must end.
//!
//! A mix file (TOML; the format is documented at the top of `mixes/demo.toml`, the built-in mix)
//! lists entries, each one shape of payment under a kind name; entries sharing a name share its
//! weight. [`Mix::parse`] checks everything once (templates, amounts, expectations, weights), so
//! that [`Mix::generate`] only draws: request `index` of a run with seed `seed` is drawn from its
//! own random stream, seeded from both, so the same seed sends the same payments in the same order
//! whatever the mode, the concurrency or the timing.
//!
//! The mix knows nothing of the network: it does not check that accounts exist or that a currency
//! has so many decimals (a mix may send refusals on purpose); the router's answers, compared with
//! each kind's expectation, tell whether the mix was right.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use corridor_schemas::wire::v1 as wire;
use prost::Message as _;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::Deserialize;

use crate::amount::AmountRange;
use crate::outcome::Expectation;
use crate::pattern::Template;

/// The mix for the demo network, built into the binary.
pub const DEMO_MIX: &str = include_str!("../mixes/demo.toml");

/// Bounds on a mix file, so a wrong file cannot exhaust the client.
pub const MIX_FILE_BYTES_MAX: u64 = 1 << 20;
pub const ENTRIES_MAX: usize = 1_000;
pub const NAMES_PER_LIST_MAX: usize = 10_000;
pub const WEIGHT_MAX: u32 = 1_000_000;
pub const SHARE_MAX: u32 = 1_000_000;
/// Instructions drawn to size the echo payload like the mix's.
pub const PAYLOAD_SAMPLES: u64 = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MixFile {
    #[serde(default)]
    names: BTreeMap<String, Vec<String>>,
    #[serde(default, rename = "kind")]
    kinds: Vec<EntryFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    name: String,
    weight: Option<u32>,
    share: Option<u32>,
    participant: String,
    payer: String,
    payee: String,
    amount: String,
    currency: String,
    #[serde(default)]
    fixed_side: FixedSideFile,
    #[serde(default)]
    quoted: bool,
    #[serde(default)]
    reference: String,
    originator: PartyFile,
    beneficiary: PartyFile,
    expect: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FixedSideFile {
    #[default]
    Send,
    Receive,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartyFile {
    name: Option<OneOrMany>,
    #[serde(default)]
    account: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    national_id: String,
    #[serde(default)]
    date_of_birth: String,
    #[serde(default)]
    place_of_birth: String,
    #[serde(default)]
    country: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A parsed, checked mix.
#[derive(Debug, Clone)]
pub struct Mix {
    kinds: Vec<Kind>,
}

/// All entries of one name.
#[derive(Debug, Clone)]
pub struct Kind {
    pub name: String,
    pub weight: u32,
    entries: Vec<Entry>,
    share_total: u64,
}

/// One shape of payment.
#[derive(Debug, Clone)]
pub struct Entry {
    share: u32,
    participant: Template,
    payer: Template,
    payee: Template,
    amount: AmountRange,
    currency: String,
    fixed_side: wire::FixedSide,
    pub quoted: bool,
    reference: Template,
    originator: PartyTemplate,
    beneficiary: PartyTemplate,
    pub expect: Expectation,
}

#[derive(Debug, Clone)]
struct PartyTemplate {
    names: Vec<Template>,
    account: Template,
    address: Template,
    national_id: Template,
    date_of_birth: Template,
    place_of_birth: Template,
    country: String,
}

/// One drawn request.
#[derive(Debug, Clone)]
pub struct Generated<'mix> {
    /// Index of its kind in [`Mix::kinds`].
    pub kind: usize,
    pub entry: &'mix Entry,
    pub instruction: wire::PaymentInstruction,
}

impl Mix {
    /// Parses and checks a mix file; errors name the entry and the field.
    pub fn parse(source: &str) -> anyhow::Result<Self> {
        let file: MixFile = toml::from_str(source).map_err(|error| anyhow::anyhow!("{}", error.to_string().trim()))?;
        anyhow::ensure!(!file.kinds.is_empty(), "the mix has no [[kind]]");
        anyhow::ensure!(file.kinds.len() <= ENTRIES_MAX, "the mix has more than {ENTRIES_MAX} [[kind]] entries");
        let mut names: BTreeMap<String, Vec<Template>> = BTreeMap::new();
        for (country, list) in &file.names {
            anyhow::ensure!(!list.is_empty(), "[names] {country}: the list is empty");
            anyhow::ensure!(list.len() <= NAMES_PER_LIST_MAX, "[names] {country}: more than {NAMES_PER_LIST_MAX}");
            let templates = list
                .iter()
                .map(|name| Template::parse(name))
                .collect::<anyhow::Result<Vec<_>>>()
                .map_err(|error| anyhow::anyhow!("[names] {country}: {error}"))?;
            names.insert(country.clone(), templates);
        }
        let mut kinds: Vec<Kind> = Vec::new();
        for (position, file_entry) in file.kinds.into_iter().enumerate() {
            let context = format!("[[kind]] #{} ({:?})", position + 1, file_entry.name);
            let (name, weight) = (file_entry.name.clone(), file_entry.weight);
            // `--mix name=weight,...` must be able to name every kind.
            anyhow::ensure!(
                !name.trim().is_empty() && name.trim() == name && !name.contains([',', '=']),
                "{context}: a name must be non-empty, without ',', '=' or surrounding spaces"
            );
            let entry = compile_entry(file_entry, &names).map_err(|error| anyhow::anyhow!("{context}: {error}"))?;
            match kinds.iter_mut().find(|kind| kind.name == name) {
                Some(kind) => {
                    if let Some(weight) = weight {
                        anyhow::ensure!(
                            weight == kind.weight,
                            "{context}: weight {weight} differs from the weight {} its name was given first",
                            kind.weight
                        );
                    }
                    kind.share_total += u64::from(entry.share);
                    kind.entries.push(entry);
                }
                None => {
                    let Some(weight) = weight else {
                        anyhow::bail!("{context}: the first entry of a name needs a weight");
                    };
                    anyhow::ensure!(weight <= WEIGHT_MAX, "{context}: weight {weight} is above {WEIGHT_MAX}");
                    kinds.push(Kind { name, weight, share_total: u64::from(entry.share), entries: vec![entry] });
                }
            }
        }
        let mix = Self { kinds };
        mix.check_weights()?;
        Ok(mix)
    }

    /// The built-in mix for the demo network.
    pub fn demo() -> anyhow::Result<Self> {
        Self::parse(DEMO_MIX).map_err(|error| anyhow::anyhow!("the built-in mix mixes/demo.toml: {error}"))
    }

    pub fn kinds(&self) -> &[Kind] {
        &self.kinds
    }

    fn total_weight(&self) -> u64 {
        self.kinds.iter().map(|kind| u64::from(kind.weight)).sum()
    }

    fn check_weights(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.total_weight() > 0, "every kind of the mix has weight 0: nothing to send");
        Ok(())
    }

    /// Applies `--mix name=weight,...`: each name must be a kind of the mix.
    pub fn override_weights(&mut self, overrides: &str) -> anyhow::Result<()> {
        let mut seen = BTreeSet::new();
        for item in overrides.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let Some((name, weight)) = item.split_once('=') else {
                anyhow::bail!("--mix {item:?}: expected name=weight, e.g. domestic=20");
            };
            let (name, weight) = (name.trim(), weight.trim());
            let weight: u32 =
                weight.parse().ok().filter(|weight| *weight <= WEIGHT_MAX).ok_or_else(|| {
                    anyhow::anyhow!("--mix {item:?}: the weight must be a whole number 0..={WEIGHT_MAX}")
                })?;
            anyhow::ensure!(seen.insert(name.to_owned()), "--mix names {name:?} twice");
            let known = self.kinds.iter().map(|kind| kind.name.as_str()).collect::<Vec<_>>().join(", ");
            let Some(kind) = self.kinds.iter_mut().find(|kind| kind.name == name) else {
                anyhow::bail!("--mix: the mix has no kind {name:?} (it has: {known})");
            };
            kind.weight = weight;
        }
        self.check_weights().map_err(|error| anyhow::anyhow!("--mix {overrides:?}: {error}"))
    }

    /// Request `index` of a run: its kind and instruction, the idempotency key `<prefix>-<index>`.
    pub fn generate(&self, seed: u64, index: u64, key_prefix: &str) -> Generated<'_> {
        let mut rng = request_rng(seed, index);
        let (kind, entry) = self.pick(&mut rng);
        let mut idempotency_key = String::with_capacity(key_prefix.len() + 21);
        idempotency_key.push_str(key_prefix);
        // Writing to a String cannot fail.
        let _ = write!(idempotency_key, "-{index}");
        let instruction = wire::PaymentInstruction {
            participant_id: entry.participant.render(&mut rng),
            idempotency_key,
            payer: entry.payer.render(&mut rng),
            payee: entry.payee.render(&mut rng),
            amount: Some(wire::Money { currency: entry.currency.clone(), amount: entry.amount.sample(&mut rng) }),
            fixed_side: entry.fixed_side as i32,
            reference: entry.reference.render(&mut rng),
            quote_id: String::new(),
            originator: Some(entry.originator.render(&mut rng)),
            beneficiary: Some(entry.beneficiary.render(&mut rng)),
            signed_at: None,
            signature: Vec::new(),
        };
        Generated { kind, entry, instruction }
    }

    /// A kind by weight, then one of its entries by share.
    fn pick(&self, rng: &mut SmallRng) -> (usize, &Entry) {
        let mut roll = rng.random_range(0..self.total_weight().max(1));
        let mut chosen = 0;
        for (index, kind) in self.kinds.iter().enumerate() {
            if roll < u64::from(kind.weight) {
                chosen = index;
                break;
            }
            roll -= u64::from(kind.weight);
        }
        let kind = &self.kinds[chosen];
        let mut roll = rng.random_range(0..kind.share_total.max(1));
        for entry in &kind.entries {
            if roll < u64::from(entry.share) {
                return (chosen, entry);
            }
            roll -= u64::from(entry.share);
        }
        // Shares sum to share_total, so the loop always returns; this is only for the compiler.
        (chosen, &kind.entries[0])
    }

    /// The mean encoded size of a `SubmitPaymentRequest` of this mix, in bytes: the echo
    /// service's payload, so the ceiling run moves as many bytes per request as a payment run.
    pub fn mean_request_bytes(&self, seed: u64) -> usize {
        let total: usize = (0..PAYLOAD_SAMPLES)
            .map(|index| {
                let generated = self.generate(seed, index, "lt-0000000000000-00000");
                wire::SubmitPaymentRequest { instruction: Some(generated.instruction) }.encoded_len()
            })
            .sum();
        total / usize::try_from(PAYLOAD_SAMPLES).unwrap_or(1)
    }
}

impl Kind {
    /// The expectations of its entries, without repeats, for the report.
    pub fn expectations(&self) -> String {
        let mut seen: Vec<String> = Vec::new();
        for entry in &self.entries {
            let text = entry.expect.to_string();
            if !seen.contains(&text) {
                seen.push(text);
            }
        }
        seen.join(" | ")
    }

    pub fn entries(&self) -> usize {
        self.entries.len()
    }
}

/// The random stream of request `index`: seeded from the run's seed and the index only.
pub fn request_rng(seed: u64, index: u64) -> SmallRng {
    // SplitMix64's step: neighbouring indices get unrelated seeds.
    let mut state = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    state = (state ^ (state >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    state = (state ^ (state >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    SmallRng::seed_from_u64(state ^ (state >> 31))
}

fn compile_entry(file: EntryFile, names: &BTreeMap<String, Vec<Template>>) -> anyhow::Result<Entry> {
    let template = |field: &str, text: &str| -> anyhow::Result<Template> {
        Template::parse(text).map_err(|error| anyhow::anyhow!("{field}: {error}"))
    };
    let share = file.share.unwrap_or(1);
    anyhow::ensure!((1..=SHARE_MAX).contains(&share), "share {share} is not in 1..={SHARE_MAX}");
    let expect = Expectation::parse(file.expect.as_deref().unwrap_or("SETTLED"))?;
    Ok(Entry {
        share,
        participant: template("participant", &file.participant)?,
        payer: template("payer", &file.payer)?,
        payee: template("payee", &file.payee)?,
        amount: AmountRange::parse(&file.amount)?,
        currency: file.currency,
        fixed_side: match file.fixed_side {
            FixedSideFile::Send => wire::FixedSide::Send,
            FixedSideFile::Receive => wire::FixedSide::Receive,
        },
        quoted: file.quoted,
        reference: template("reference", &file.reference)?,
        originator: compile_party("originator", file.originator, names)?,
        beneficiary: compile_party("beneficiary", file.beneficiary, names)?,
        expect,
    })
}

fn compile_party(
    role: &str,
    file: PartyFile,
    names: &BTreeMap<String, Vec<Template>>,
) -> anyhow::Result<PartyTemplate> {
    let template = |field: &str, text: &str| -> anyhow::Result<Template> {
        Template::parse(text).map_err(|error| anyhow::anyhow!("{role}.{field}: {error}"))
    };
    let own_names = match file.name {
        Some(OneOrMany::One(name)) => vec![name],
        Some(OneOrMany::Many(list)) => list,
        None => Vec::new(),
    };
    anyhow::ensure!(own_names.len() <= NAMES_PER_LIST_MAX, "{role}.name: more than {NAMES_PER_LIST_MAX} names");
    let names = if own_names.is_empty() {
        match names.get(&file.country) {
            Some(list) => list.clone(),
            None => anyhow::bail!(
                "{role} has no name, and [names] has none for its country {:?}; every party needs a name",
                file.country
            ),
        }
    } else {
        own_names.iter().map(|name| template("name", name)).collect::<anyhow::Result<_>>()?
    };
    Ok(PartyTemplate {
        names,
        account: template("account", &file.account)?,
        address: template("address", &file.address)?,
        national_id: template("national_id", &file.national_id)?,
        date_of_birth: template("date_of_birth", &file.date_of_birth)?,
        place_of_birth: template("place_of_birth", &file.place_of_birth)?,
        country: file.country,
    })
}

impl PartyTemplate {
    fn render(&self, rng: &mut SmallRng) -> wire::Party {
        let name = &self.names[rng.random_range(0..self.names.len())];
        wire::Party {
            name: name.render(rng),
            account: self.account.render(rng),
            address: self.address.render(rng),
            national_id: self.national_id.render(rng),
            date_of_birth: self.date_of_birth.render(rng),
            place_of_birth: self.place_of_birth.render(rng),
            country: self.country.clone(),
        }
    }
}

/// One line saying what an instruction asked, for the examples of unexpected answers.
pub fn describe(instruction: &wire::PaymentInstruction) -> String {
    let (amount, currency) =
        instruction.amount.as_ref().map_or(("", ""), |money| (money.amount.as_str(), money.currency.as_str()));
    let side = if instruction.fixed_side == wire::FixedSide::Receive as i32 { "receive" } else { "send" };
    let beneficiary = instruction.beneficiary.as_ref().map_or("", |party| party.name.as_str());
    format!(
        "{} {} → {} ({beneficiary}), {amount} {currency} fixed {side}, key {}",
        instruction.participant_id, instruction.payer, instruction.payee, instruction.idempotency_key
    )
}

#[cfg(test)]
mod tests;
