//! Build steps for the schemas crate:
//! 1. compile the `.proto` files with the vendored `protoc` (a bare machine needs nothing but cargo),
//!    and write the descriptor set that server reflection serves;
//! 2. turn the ISO 4217 table (`data/iso4217.xml`) into a sorted static array, so currency lookup
//!    at run time is a binary search over constants and no XML parser ships in the binary.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    compile_protos(&out_dir)?;
    generate_currency_table(&out_dir)?;
    Ok(())
}

fn compile_protos(out_dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let well_known_types = protoc_bin_vendored::include_path()?;
    // Hand protoc to prost-build through its config: `env::set_var` is unsafe in edition 2024.
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    let protos = [
        "proto/corridor/v1/payments.proto",
        "proto/corridor/v1/fx.proto",
        "proto/corridor/v1/compliance.proto",
        "proto/corridor/v1/ledger.proto",
        "proto/corridor/v1/operator.proto",
    ];
    let well_known_types = well_known_types.to_str().ok_or("protoc include path is not UTF-8")?.to_owned();
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("corridor_descriptor.bin"))
        .compile_with_config(config, &protos, &["proto", well_known_types.as_str()])?;
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}

struct CurrencyRow {
    code: String,
    numeric: u16,
    minor_units: Option<u8>,
    name: String,
}

fn generate_currency_table(out_dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=data/iso4217.xml");
    let xml = fs::read_to_string("data/iso4217.xml")?;
    let document = roxmltree::Document::parse(&xml)?;
    let published = document.root_element().attribute("Pblshd").unwrap_or_default().to_owned();
    let child_text = |entry: roxmltree::Node, tag: &str| {
        entry
            .children()
            .find(|child| child.has_tag_name(tag))
            .and_then(|child| child.text())
            .map(|text| text.trim().to_owned())
    };
    let mut rows: Vec<CurrencyRow> = Vec::new();
    for entry in document.descendants().filter(|node| node.has_tag_name("CcyNtry")) {
        // Entries without a code are territories with no universal currency (e.g. Antarctica).
        let Some(code) = child_text(entry, "Ccy") else { continue };
        let minor_units = match child_text(entry, "CcyMnrUnts").as_deref() {
            None | Some("N.A.") => None,
            Some(digits) => Some(digits.parse::<u8>()?),
        };
        rows.push(CurrencyRow {
            numeric: child_text(entry, "CcyNbr").ok_or("CcyNtry without CcyNbr")?.parse()?,
            name: child_text(entry, "CcyNm").unwrap_or_default(),
            code,
            minor_units,
        });
    }
    rows.sort_by(|a, b| a.code.cmp(&b.code));
    rows.dedup_by(|a, b| a.code == b.code);
    if rows.len() < 150 || published.is_empty() {
        return Err(format!("data/iso4217.xml looks wrong: {} codes, published {published:?}", rows.len()).into());
    }
    let mut source = String::new();
    writeln!(source, "/// Publication date of the embedded ISO 4217 list.")?;
    writeln!(source, "pub const ISO_4217_PUBLISHED: &str = {published:?};")?;
    writeln!(source, "/// (code, numeric code, minor units or None for N.A., name), sorted by code.")?;
    writeln!(source, "pub static ISO_4217: &[(&str, u16, Option<u8>, &str)] = &[")?;
    for row in &rows {
        writeln!(source, "    ({:?}, {}, {:?}, {:?}),", row.code, row.numeric, row.minor_units, row.name)?;
    }
    writeln!(source, "];")?;
    fs::write(out_dir.join("iso4217.rs"), source)?;
    Ok(())
}
