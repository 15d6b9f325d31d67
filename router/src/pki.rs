//! `corridor pki`: the network's certificate authority, kept in one directory.
//!
//! - `corridor pki init --dir DIR` creates the CA: an ECDSA P-256 key (`ca.key`, mode 0600), a
//!   self-signed CA certificate (`ca.pem`, 10 years, may sign leaves only), an empty CRL signed by
//!   the CA (`crl.pem`) and the register of issued certificates (`issued.txt`). It never
//!   overwrites an existing CA.
//! - `corridor pki issue --dir DIR --party ID --role ROLE --out PREFIX` issues a party's
//!   certificate, naming its identity as the subjectAltName URI of [`crate::tls`]'s scheme
//!   (`corridor://<role>/<id>[?jurisdiction=XX]`), and writes `PREFIX.pem` (leaf, then the CA)
//!   and `PREFIX.key` (0600). Servers (router, ledger node) also get `--dns`/`--ip` names and
//!   serverAuth besides clientAuth (each is the other's client); every other role gets clientAuth.
//!   The serial (128 random bits, hex) goes into `issued.txt` with role, id and expiry.
//! - `corridor pki issue-network --dir DIR --config FILE` issues one certificate per party the
//!   network's configuration names (router, participants, providers, officers, regulators, ledger
//!   nodes, an operator) into `DIR/parties/<id>.{pem,key}`.
//! - `corridor pki signing-key --out PREFIX` makes a participant's Ed25519 instruction-signing
//!   key (`PREFIX.pk8`, 0600) and prints the public key to register as its `signing_key`.
//! - `corridor pki revoke --dir DIR --serial HEX | --party ID` adds serials to the CRL and re-signs
//!   `crl.pem` (replaced atomically, so a router re-reading it never sees half a file; see
//!   [`crate::tls::ReloadingClientVerifier`]).
//!
//! It does not distribute anything, renew certificates or keep the CA key in an HSM: the
//! directory holds the CA's secret key and must be guarded like one.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use corridor_schemas::Jurisdiction;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, RevokedCertParams, SanType, SerialNumber,
};
use ring::rand::SecureRandom;
use time::OffsetDateTime;

use crate::tls::{PartyIdentity, Role};

pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca.key";
pub const CRL_FILE: &str = "crl.pem";
pub const ISSUED_FILE: &str = "issued.txt";
/// The CA certificate's lifetime.
pub const CA_VALIDITY_DAYS: i64 = 3650;
/// A party certificate's lifetime unless `--days` says otherwise.
pub const LEAF_VALIDITY_DAYS_DEFAULT: u32 = 365;
/// Longest lifetime `--days` accepts for a party certificate.
pub const LEAF_VALIDITY_DAYS_MAX: u32 = 3650;
/// Certificates are valid from this long before they were issued, for clocks that lag.
pub const CLOCK_SKEW_ALLOWANCE_S: i64 = 300;
/// How far ahead a CRL's nextUpdate lies (informative: the router does not enforce CRL expiry).
pub const CRL_NEXT_UPDATE_DAYS: i64 = 365;
/// Serial numbers are this many random bytes.
const SERIAL_LENGTH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0} already exists; refusing to overwrite it")]
    AlreadyExists(PathBuf),
    #[error("certificate generation failed: {0}")]
    Generation(#[from] rcgen::Error),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{path} is malformed: {detail}")]
    Malformed { path: PathBuf, detail: String },
    #[error("no certificate with serial {0} was issued by this CA")]
    UnknownSerial(String),
    #[error("no certificate was issued to party `{0}`")]
    UnknownParty(String),
    #[error("the system clock is unusable: {0}")]
    Clock(String),
    #[error("the system random generator failed")]
    Random,
}

#[derive(Debug, clap::Subcommand)]
pub enum PkiCommand {
    /// Create the network's CA (key, certificate, empty CRL) in a new directory.
    Init {
        /// The CA directory; created if missing, refused if it already holds a CA.
        #[arg(long)]
        dir: PathBuf,
        /// Goes into the CA certificate's subject.
        #[arg(long, default_value = "Corridor")]
        network_name: String,
    },
    /// Issue a party's certificate and key.
    Issue(IssueOptions),
    /// Issue a certificate for every party a network configuration names: the router, each
    /// participant and liquidity provider, officer, regulator and ledger (as its node), and one
    /// operator; into DIR/parties/<id>.pem and .key.
    IssueNetwork {
        /// The CA directory.
        #[arg(long)]
        dir: PathBuf,
        /// The network's configuration (TOML), e.g. ops/config/network.toml.
        #[arg(long)]
        config: PathBuf,
        /// Names the router and ledger nodes are reached at (default: localhost).
        #[arg(long = "dns", default_value = "localhost")]
        dns_names: Vec<String>,
        /// Addresses the router and ledger nodes are reached at (default: 127.0.0.1).
        #[arg(long = "ip", default_value = "127.0.0.1")]
        ip_addresses: Vec<IpAddr>,
    },
    /// Make a participant's Ed25519 instruction-signing key: writes PREFIX.pk8 (PKCS#8, 0600) and
    /// prints the public key to register as `signing_key` under its `[[participants]]`.
    SigningKey {
        /// Writes PREFIX.pk8.
        #[arg(long)]
        out: PathBuf,
    },
    /// Revoke certificates (by serial, or every one of a party) and re-sign the CRL.
    Revoke {
        #[arg(long)]
        dir: PathBuf,
        /// The serial, in hex as `issued.txt` lists it.
        #[arg(long, conflicts_with = "party", required_unless_present = "party")]
        serial: Option<String>,
        /// Revoke every certificate issued to this party id (whatever its role).
        #[arg(long)]
        party: Option<String>,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct IssueOptions {
    /// The CA directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// The party's id (participant id, ledger id, regulator or officer id, ...).
    #[arg(long)]
    pub party: String,
    #[arg(long, value_enum)]
    pub role: Role,
    /// ISO 3166-1 alpha-2; required for regulator, officer and ledger_node, refused otherwise.
    #[arg(long)]
    pub jurisdiction: Option<String>,
    /// A DNS name the server is reached at (router and ledger_node only). Repeatable.
    #[arg(long = "dns")]
    pub dns_names: Vec<String>,
    /// An IP address the server is reached at (router and ledger_node only). Repeatable.
    #[arg(long = "ip")]
    pub ip_addresses: Vec<IpAddr>,
    /// Writes PREFIX.pem and PREFIX.key.
    #[arg(long)]
    pub out: PathBuf,
    /// Lifetime in days.
    #[arg(long, default_value_t = LEAF_VALIDITY_DAYS_DEFAULT)]
    pub days: u32,
}

/// One line of `issued.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedRecord {
    /// Lower-case hex, no separators.
    pub serial: String,
    pub role: Role,
    pub id: String,
    /// Unix seconds.
    pub not_after_unix_s: i64,
}

/// What `issue` wrote.
#[derive(Debug, Clone)]
pub struct Issued {
    pub identity: PartyIdentity,
    pub record: IssuedRecord,
    pub certificate_path: PathBuf,
    pub key_path: PathBuf,
}

/// Which certificates `revoke` revokes.
#[derive(Debug, Clone)]
pub enum RevokeTarget {
    Serial(String),
    Party(String),
}

pub fn run(command: PkiCommand) -> anyhow::Result<ExitCode> {
    let now = SystemTime::now();
    match command {
        PkiCommand::Init { dir, network_name } => {
            init(&dir, &network_name, now)?;
            println!("CA created in {}: {CA_CERT_FILE}, {CA_KEY_FILE} (keep secret), {CRL_FILE}", dir.display());
        }
        PkiCommand::Issue(options) => {
            let issued = issue(&options, now)?;
            println!(
                "issued {} serial {} until {}: {} and {}",
                issued.identity,
                issued.record.serial,
                format_unix_s(issued.record.not_after_unix_s),
                issued.certificate_path.display(),
                issued.key_path.display()
            );
        }
        PkiCommand::IssueNetwork { dir, config, dns_names, ip_addresses } => {
            let config = crate::config::Config::load(&config)
                .map_err(|error| anyhow::anyhow!("invalid configuration {}: {error}", config.display()))?;
            let servers = ServerNames { dns_names, ip_addresses };
            for issued in issue_network(&dir, &config, &servers, now)? {
                println!("issued {}: {}", issued.identity, issued.certificate_path.display());
            }
        }
        PkiCommand::SigningKey { out } => {
            let (path, public_key) = new_signing_key(&out)?;
            println!("wrote {} (keep secret); register the public key:", path.display());
            println!("signing_key = \"{public_key}\"");
        }
        PkiCommand::Revoke { dir, serial, party } => {
            let target = match (serial, party) {
                (Some(serial), _) => RevokeTarget::Serial(serial),
                (None, Some(party)) => RevokeTarget::Party(party),
                (None, None) => anyhow::bail!("give --serial or --party"),
            };
            let revoked = revoke(&dir, &target, now)?;
            if revoked.is_empty() {
                println!("nothing new to revoke; {} unchanged", dir.join(CRL_FILE).display());
            } else {
                println!("revoked {}; {} re-signed", revoked.join(", "), dir.join(CRL_FILE).display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates the CA in `dir`.
pub fn init(dir: &Path, network_name: &str, now: SystemTime) -> Result<(), PkiError> {
    if network_name.trim().is_empty() || network_name.len() > 64 {
        return Err(PkiError::InvalidRequest("the network name must have 1 to 64 characters".into()));
    }
    for file in [CA_CERT_FILE, CA_KEY_FILE] {
        let path = dir.join(file);
        if path.exists() {
            return Err(PkiError::AlreadyExists(path));
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Io { path: dir.to_path_buf(), source })?;
    let now = offset_date_time(now)?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, format!("{network_name} CA"));
    params.distinguished_name.push(DnType::OrganizationName, network_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.not_before = now - time::Duration::seconds(CLOCK_SKEW_ALLOWANCE_S);
    params.not_after = now + time::Duration::days(CA_VALIDITY_DAYS);
    params.serial_number = Some(random_serial()?);
    let certificate = params.self_signed(&key)?;
    // The key first and exclusively: two racing `init`s cannot both get past this.
    write_new_file(&dir.join(CA_KEY_FILE), key.serialize_pem().as_bytes(), true)?;
    write_new_file(&dir.join(CA_CERT_FILE), certificate.pem().as_bytes(), false)?;
    let issuer = Issuer::new(params, key);
    write_crl(dir, &issuer, Vec::new(), SerialNumber::from_slice(&[1]), now)?;
    let issued = dir.join(ISSUED_FILE);
    if !issued.exists() {
        write_new_file(&issued, b"# serial role id not_after_unix_s\n", false)?;
    }
    Ok(())
}

/// Issues a certificate for one party.
pub fn issue(options: &IssueOptions, now: SystemTime) -> Result<Issued, PkiError> {
    let jurisdiction = options
        .jurisdiction
        .as_deref()
        .map(Jurisdiction::new)
        .transpose()
        .map_err(|error| PkiError::InvalidRequest(format!("--jurisdiction: {error}")))?;
    let identity =
        PartyIdentity::new(options.role, options.party.clone(), jurisdiction).map_err(PkiError::InvalidRequest)?;
    let has_server_names = !options.dns_names.is_empty() || !options.ip_addresses.is_empty();
    if options.role.is_server() && !has_server_names {
        return Err(PkiError::InvalidRequest(format!("a {} certificate needs --dns or --ip", options.role)));
    }
    if !options.role.is_server() && has_server_names {
        return Err(PkiError::InvalidRequest(format!("a {} certificate takes no --dns or --ip", options.role)));
    }
    if options.days == 0 || options.days > LEAF_VALIDITY_DAYS_MAX {
        return Err(PkiError::InvalidRequest(format!("--days must be 1 to {LEAF_VALIDITY_DAYS_MAX}")));
    }
    let certificate_path = with_suffix(&options.out, ".pem");
    let key_path = with_suffix(&options.out, ".key");
    for path in [&certificate_path, &key_path] {
        if path.exists() {
            return Err(PkiError::AlreadyExists(path.clone()));
        }
    }

    let (issuer, ca_pem) = load_issuer(&options.dir)?;
    let now = offset_date_time(now)?;
    let not_after = now + time::Duration::days(i64::from(options.days));
    let serial = random_serial()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, identity.id.as_str());
    params.distinguished_name.push(DnType::OrganizationalUnitName, identity.role.as_str());
    params.subject_alt_names = vec![SanType::URI(identity.uri().try_into()?)];
    for name in &options.dns_names {
        params.subject_alt_names.push(SanType::DnsName(name.as_str().try_into()?));
    }
    params.subject_alt_names.extend(options.ip_addresses.iter().copied().map(SanType::IpAddress));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = if options.role.is_server() {
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    params.not_before = now - time::Duration::seconds(CLOCK_SKEW_ALLOWANCE_S);
    params.not_after = not_after;
    params.serial_number = Some(serial.clone());
    params.use_authority_key_identifier_extension = true;
    params.key_identifier_method = KeyIdMethod::Sha256;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let certificate = params.signed_by(&key, &issuer)?;

    write_new_file(&key_path, key.serialize_pem().as_bytes(), true)?;
    write_new_file(&certificate_path, format!("{}{ca_pem}", certificate.pem()).as_bytes(), false)?;
    let record = IssuedRecord {
        serial: hex(&serial.to_bytes()),
        role: identity.role,
        id: identity.id.clone(),
        not_after_unix_s: not_after.unix_timestamp(),
    };
    append_issued(&options.dir, &record)?;
    Ok(Issued { identity, record, certificate_path, key_path })
}

/// Makes a new Ed25519 key pair for signing payment instructions (schemas/SIGNATURES.md), writes
/// its PKCS#8 document to `<out>.pk8` (0600, never over an existing file) and returns the path and
/// the public key a participant registers.
pub fn new_signing_key(out: &Path) -> Result<(PathBuf, corridor_schemas::ParticipantKey), PkiError> {
    let random = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&random).map_err(|_| PkiError::Random)?;
    let key_pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| PkiError::InvalidRequest("the generated key does not read back".into()))?;
    let path = with_suffix(out, ".pk8");
    write_new_file(&path, pkcs8.as_ref(), true)?;
    Ok((path, corridor_schemas::ParticipantKey::of(&key_pair)))
}

/// The names servers' certificates carry.
#[derive(Debug, Clone)]
pub struct ServerNames {
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
}

impl ServerNames {
    /// `localhost` and 127.0.0.1: a network on one machine.
    pub fn local() -> Self {
        ServerNames { dns_names: vec!["localhost".into()], ip_addresses: vec![IpAddr::from([127, 0, 0, 1])] }
    }
}

/// The id of the router's certificate that [`issue_network`] issues, and of its operator's.
pub const ROUTER_PARTY: &str = "router";
pub const OPERATOR_PARTY: &str = "operator";
/// Where [`issue_network`] writes a party's files: `<dir>/parties/<id>.pem` and `.key`.
pub fn party_prefix(dir: &Path, id: &str) -> PathBuf {
    dir.join("parties").join(id)
}

/// Issues a certificate for every party `config` names (see [`PkiCommand::IssueNetwork`]).
pub fn issue_network(
    dir: &Path,
    config: &crate::config::Config,
    servers: &ServerNames,
    now: SystemTime,
) -> Result<Vec<Issued>, PkiError> {
    let mut parties: Vec<(Role, String, Option<String>)> =
        vec![(Role::Router, ROUTER_PARTY.to_owned(), None), (Role::Operator, OPERATOR_PARTY.to_owned(), None)];
    for participant in &config.participants {
        let role = match participant.role {
            crate::config::Role::Bank => Role::Participant,
            crate::config::Role::LiquidityProvider => Role::LiquidityProvider,
        };
        parties.push((role, participant.id.to_string(), None));
    }
    for officer in &config.compliance_officers {
        parties.push((Role::Officer, officer.id.to_string(), Some(officer.jurisdiction.to_string())));
    }
    for regulator in &config.regulators {
        parties.push((Role::Regulator, regulator.id.to_string(), Some(regulator.jurisdiction.to_string())));
    }
    for ledger in &config.ledgers {
        parties.push((Role::LedgerNode, ledger.id.to_string(), Some(ledger.jurisdiction.to_string())));
    }
    let mut ids = std::collections::HashSet::new();
    if let Some((_, id, _)) = parties.iter().find(|(_, id, _)| !ids.insert(id.clone())) {
        return Err(PkiError::InvalidRequest(format!("two parties of the network are named `{id}`")));
    }
    let folder = dir.join("parties");
    std::fs::create_dir_all(&folder).map_err(|source| PkiError::Io { path: folder.clone(), source })?;
    parties
        .into_iter()
        .map(|(role, party, jurisdiction)| {
            let (dns_names, ip_addresses) = if role.is_server() {
                (servers.dns_names.clone(), servers.ip_addresses.clone())
            } else {
                (Vec::new(), Vec::new())
            };
            let out = party_prefix(dir, &party);
            let options = IssueOptions {
                dir: dir.to_path_buf(),
                party,
                role,
                jurisdiction,
                dns_names,
                ip_addresses,
                out,
                days: LEAF_VALIDITY_DAYS_DEFAULT,
            };
            issue(&options, now)
        })
        .collect()
}

/// Revokes `target` and re-signs the CRL; returns the serials newly revoked (empty if all of
/// them already were, in which case the CRL is left as it is).
pub fn revoke(dir: &Path, target: &RevokeTarget, now: SystemTime) -> Result<Vec<String>, PkiError> {
    let issued = read_issued(dir)?;
    let wanted: Vec<String> = match target {
        RevokeTarget::Serial(serial) => {
            let serial = serial.trim().to_ascii_lowercase().replace(':', "");
            if !issued.iter().any(|record| record.serial == serial) {
                return Err(PkiError::UnknownSerial(serial));
            }
            vec![serial]
        }
        RevokeTarget::Party(party) => {
            let serials: Vec<String> =
                issued.iter().filter(|record| &record.id == party).map(|record| record.serial.clone()).collect();
            if serials.is_empty() {
                return Err(PkiError::UnknownParty(party.clone()));
            }
            serials
        }
    };
    let (issuer, _) = load_issuer(dir)?;
    let (mut revoked, crl_number) = read_crl(dir)?;
    let now = offset_date_time(now)?;
    let mut newly_revoked = Vec::new();
    for serial in wanted {
        if revoked.iter().any(|entry| hex(&entry.serial_number.to_bytes()) == serial) {
            continue;
        }
        let bytes = unhex(&serial).ok_or_else(|| PkiError::Malformed {
            path: dir.join(ISSUED_FILE),
            detail: format!("serial `{serial}` is not hex"),
        })?;
        revoked.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(&bytes),
            revocation_time: now,
            reason_code: None,
            invalidity_date: None,
        });
        newly_revoked.push(serial);
    }
    if !newly_revoked.is_empty() {
        write_crl(dir, &issuer, revoked, increment(&crl_number), now)?;
    }
    Ok(newly_revoked)
}

/// Every line of `issued.txt`.
pub fn read_issued(dir: &Path) -> Result<Vec<IssuedRecord>, PkiError> {
    let path = dir.join(ISSUED_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| PkiError::Io { path: path.clone(), source })?;
    let malformed = |line: &str| PkiError::Malformed { path: path.clone(), detail: format!("line `{line}`") };
    let mut records = Vec::new();
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [serial, role, id, not_after] = fields[..] else {
            return Err(malformed(line));
        };
        records.push(IssuedRecord {
            serial: serial.to_string(),
            role: role.parse().map_err(|_| malformed(line))?,
            id: id.to_string(),
            not_after_unix_s: not_after.parse().map_err(|_| malformed(line))?,
        });
    }
    Ok(records)
}

fn append_issued(dir: &Path, record: &IssuedRecord) -> Result<(), PkiError> {
    let path = dir.join(ISSUED_FILE);
    let io = |source| PkiError::Io { path: path.clone(), source };
    let mut file = std::fs::OpenOptions::new().append(true).create(true).open(&path).map_err(io)?;
    writeln!(file, "{} {} {} {}", record.serial, record.role, record.id, record.not_after_unix_s).map_err(io)?;
    file.sync_all().map_err(io)
}

/// The CA as an issuer, and its certificate's PEM (appended to every leaf).
fn load_issuer(dir: &Path) -> Result<(Issuer<'static, KeyPair>, String), PkiError> {
    let read = |file: &str| {
        let path = dir.join(file);
        std::fs::read_to_string(&path).map_err(|source| PkiError::Io { path, source })
    };
    let ca_pem = read(CA_CERT_FILE)?;
    let key = KeyPair::from_pem(&read(CA_KEY_FILE)?)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, key)?;
    Ok((issuer, ca_pem))
}

/// The CRL's entries and number, as `crl.pem` holds them now.
fn read_crl(dir: &Path) -> Result<(Vec<RevokedCertParams>, Vec<u8>), PkiError> {
    let path = dir.join(CRL_FILE);
    let pem = std::fs::read(&path).map_err(|source| PkiError::Io { path: path.clone(), source })?;
    let malformed = |detail: String| PkiError::Malformed { path: path.clone(), detail };
    let der = crate::tls::load_crls(&pem)
        .map_err(|error| malformed(error.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| malformed("no CRL in the file".into()))?;
    let (_, crl) = x509_parser::parse_x509_crl(&der).map_err(|error| malformed(error.to_string()))?;
    let mut revoked = Vec::new();
    for entry in crl.iter_revoked_certificates() {
        revoked.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(entry.raw_serial()),
            revocation_time: OffsetDateTime::from_unix_timestamp(entry.revocation_date.timestamp())
                .map_err(|error| malformed(error.to_string()))?,
            reason_code: None,
            invalidity_date: None,
        });
    }
    let number = crl.crl_number().map(|number| number.to_bytes_be()).unwrap_or_else(|| vec![0]);
    Ok((revoked, number))
}

/// Signs a CRL with the CA and replaces `crl.pem` atomically (write aside, then rename).
fn write_crl(
    dir: &Path,
    issuer: &Issuer<'_, KeyPair>,
    revoked_certs: Vec<RevokedCertParams>,
    crl_number: SerialNumber,
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update: now + time::Duration::days(CRL_NEXT_UPDATE_DAYS),
        crl_number,
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let pem = params.signed_by(issuer)?.pem()?;
    let path = dir.join(CRL_FILE);
    let temporary = dir.join(format!("{CRL_FILE}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    write_new_file(&temporary, pem.as_bytes(), false)?;
    std::fs::rename(&temporary, &path).map_err(|source| PkiError::Io { path, source })
}

/// Creates `path` (never replacing a file) with `contents`, mode 0600 if `secret`, and syncs it.
fn write_new_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), PkiError> {
    let io = |source| PkiError::Io { path: path.to_path_buf(), source };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            PkiError::AlreadyExists(path.to_path_buf())
        } else {
            io(source)
        }
    })?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

/// 128 random bits, positive and without a leading zero byte, so DER keeps all 16 bytes and the
/// hex in `issued.txt` is exactly what the certificate and the CRL carry.
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; SERIAL_LENGTH];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| PkiError::Random)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// A big-endian unsigned number plus one.
fn increment(number: &[u8]) -> SerialNumber {
    let mut bytes = number.to_vec();
    for byte in bytes.iter_mut().rev() {
        let (sum, carry) = byte.overflowing_add(1);
        *byte = sum;
        if !carry {
            return SerialNumber::from_slice(&bytes);
        }
    }
    bytes.insert(0, 1);
    SerialNumber::from_slice(&bytes)
}

fn offset_date_time(now: SystemTime) -> Result<OffsetDateTime, PkiError> {
    let seconds = now.duration_since(SystemTime::UNIX_EPOCH).map_err(|error| PkiError::Clock(error.to_string()))?;
    let seconds = i64::try_from(seconds.as_secs()).map_err(|error| PkiError::Clock(error.to_string()))?;
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|error| PkiError::Clock(error.to_string()))
}

fn format_unix_s(seconds: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(seconds) {
        Ok(time) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            time.year(),
            u8::from(time.month()),
            time.day(),
            time.hour(),
            time.minute(),
            time.second()
        ),
        Err(_) => format!("{seconds} (unix)"),
    }
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut path = prefix.as_os_str().to_os_string();
    path.push(suffix);
    PathBuf::from(path)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok()).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    // Tests fail loudly on any unexpected error; that is what unwrap is for here.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::tls::identity_from_certificate;

    pub(crate) fn temp_directory(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("corridor-pki-{name}-{}-{}", std::process::id(), uuid::Uuid::now_v7()))
    }

    pub(crate) fn request(dir: &Path, role: Role, party: &str, jurisdiction: Option<&str>) -> IssueOptions {
        IssueOptions {
            dir: dir.to_path_buf(),
            party: party.into(),
            role,
            jurisdiction: jurisdiction.map(str::to_string),
            dns_names: if role.is_server() { vec!["localhost".into()] } else { Vec::new() },
            ip_addresses: Vec::new(),
            out: dir.join(format!("{role}-{party}")),
            days: LEAF_VALIDITY_DAYS_DEFAULT,
        }
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn revoked_serials(dir: &Path) -> Vec<String> {
        read_crl(dir).unwrap().0.iter().map(|entry| hex(&entry.serial_number.to_bytes())).collect()
    }

    #[test]
    fn a_signing_key_signs_what_its_public_key_verifies() {
        let dir = temp_directory("signing-key");
        std::fs::create_dir_all(&dir).unwrap();
        let (path, public_key) = new_signing_key(&dir.join("bank-hk")).unwrap();
        assert_eq!(path, dir.join("bank-hk.pk8"));
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        let key_pair = ring::signature::Ed25519KeyPair::from_pkcs8(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(corridor_schemas::ParticipantKey::of(&key_pair), public_key);
        assert!(matches!(new_signing_key(&dir.join("bank-hk")), Err(PkiError::AlreadyExists(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn init_creates_the_ca_and_refuses_to_overwrite_it() {
        let dir = temp_directory("init");
        init(&dir, "Testnet", SystemTime::now()).unwrap();
        for file in [CA_CERT_FILE, CA_KEY_FILE, CRL_FILE, ISSUED_FILE] {
            assert!(dir.join(file).exists(), "{file} is missing");
        }
        #[cfg(unix)]
        assert_eq!(mode(&dir.join(CA_KEY_FILE)), 0o600);
        assert!(revoked_serials(&dir).is_empty());
        let ca_before = std::fs::read(dir.join(CA_KEY_FILE)).unwrap();
        assert!(matches!(init(&dir, "Testnet", SystemTime::now()), Err(PkiError::AlreadyExists(_))));
        assert_eq!(std::fs::read(dir.join(CA_KEY_FILE)).unwrap(), ca_before);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn issue_names_the_identity_and_records_the_serial() {
        let dir = temp_directory("issue");
        init(&dir, "Testnet", SystemTime::now()).unwrap();
        let issued = issue(&request(&dir, Role::Regulator, "hkma", Some("HK")), SystemTime::now()).unwrap();
        #[cfg(unix)]
        assert_eq!(mode(&issued.key_path), 0o600);
        let chain = crate::tls::load_certificates(&std::fs::read(&issued.certificate_path).unwrap(), "test").unwrap();
        assert_eq!(chain.len(), 2, "leaf, then the CA");
        let identity = identity_from_certificate(&chain[0]).unwrap();
        assert_eq!(identity.uri(), "corridor://regulator/hkma?jurisdiction=HK");
        assert_eq!(identity, issued.identity);
        let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
        assert_eq!(hex(leaf.raw_serial()), issued.record.serial);
        assert_eq!(leaf.validity().not_after.timestamp(), issued.record.not_after_unix_s);
        assert_eq!(read_issued(&dir).unwrap(), vec![issued.record]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn issue_refuses_inconsistent_requests() {
        let dir = temp_directory("issue-bad");
        init(&dir, "Testnet", SystemTime::now()).unwrap();
        let check = |options: IssueOptions| {
            assert!(
                matches!(issue(&options, SystemTime::now()), Err(PkiError::InvalidRequest(_))),
                "{options:?} was accepted"
            );
        };
        check(request(&dir, Role::Regulator, "hkma", None));
        check(request(&dir, Role::Participant, "bank-a", Some("HK")));
        check(request(&dir, Role::Participant, "bank/a", None));
        check(request(&dir, Role::Officer, "alice", Some("hk")));
        check(IssueOptions { dns_names: Vec::new(), ..request(&dir, Role::Router, "router-1", None) });
        check(IssueOptions {
            dns_names: vec!["bank.example".into()],
            ..request(&dir, Role::Participant, "bank-a", None)
        });
        check(IssueOptions { days: 0, ..request(&dir, Role::Participant, "bank-a", None) });
        assert!(read_issued(&dir).unwrap().is_empty());
        // An existing certificate is never overwritten.
        issue(&request(&dir, Role::Participant, "bank-a", None), SystemTime::now()).unwrap();
        assert!(matches!(
            issue(&request(&dir, Role::Participant, "bank-a", None), SystemTime::now()),
            Err(PkiError::AlreadyExists(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn revoke_by_serial_or_party_re_signs_the_crl() {
        let dir = temp_directory("revoke");
        init(&dir, "Testnet", SystemTime::now()).unwrap();
        let now = SystemTime::now();
        let first = issue(&request(&dir, Role::Participant, "bank-a", None), now).unwrap();
        let second =
            issue(&IssueOptions { out: dir.join("bank-a-2"), ..request(&dir, Role::Participant, "bank-a", None) }, now)
                .unwrap();
        let other = issue(&request(&dir, Role::LiquidityProvider, "lp-1", None), now).unwrap();

        let serial = first.record.serial.to_ascii_uppercase();
        assert_eq!(revoke(&dir, &RevokeTarget::Serial(serial), now).unwrap(), vec![first.record.serial.clone()]);
        assert_eq!(revoked_serials(&dir), vec![first.record.serial.clone()]);
        let number_after_first = read_crl(&dir).unwrap().1;

        // By party: only what is not revoked yet.
        assert_eq!(
            revoke(&dir, &RevokeTarget::Party("bank-a".into()), now).unwrap(),
            vec![second.record.serial.clone()]
        );
        assert_eq!(revoked_serials(&dir), vec![first.record.serial.clone(), second.record.serial.clone()]);
        assert!(read_crl(&dir).unwrap().1 > number_after_first, "the CRL number increases");
        assert!(revoke(&dir, &RevokeTarget::Party("bank-a".into()), now).unwrap().is_empty());
        assert!(!revoked_serials(&dir).contains(&other.record.serial));

        assert!(matches!(revoke(&dir, &RevokeTarget::Serial("00ff".into()), now), Err(PkiError::UnknownSerial(_))));
        assert!(matches!(revoke(&dir, &RevokeTarget::Party("nobody".into()), now), Err(PkiError::UnknownParty(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn crl_numbers_count_up_across_bytes() {
        assert_eq!(increment(&[1]).to_bytes(), vec![2]);
        assert_eq!(increment(&[0x00, 0xff]).to_bytes(), vec![0x01, 0x00]);
        assert_eq!(increment(&[0xff]).to_bytes(), vec![0x01, 0x00]);
        assert_eq!(unhex("0aFF"), Some(vec![0x0a, 0xff]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
