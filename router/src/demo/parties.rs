//! The demo's parties and how they reach the router: by default each has its own certificate
//! from a CA the demo creates for the run (`corridor pki`), its own connections, and (for
//! participants) its own Ed25519 signing key registered in the network; with `--insecure-dev`
//! everyone shares plain-text connections and nothing is signed.

use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{ParticipantKey, PaymentInstruction};
use ring::signature::Ed25519KeyPair;
use tonic::transport::Channel;

use crate::config::Config;
use crate::pki::{self, ServerNames};
use crate::transport::{ClientSecurity, ServerSecurity, TlsFiles};

pub struct Parties {
    /// Each party's client security, by id; empty in plain text.
    clients: HashMap<String, ClientSecurity>,
    /// The participants' signing keys; empty in plain text.
    signers: HashMap<String, Ed25519KeyPair>,
    address: String,
}

impl Parties {
    /// Creates a CA in `dir`, issues a certificate to every party of `config`, registers a new
    /// signing key for every participant in `config`, and returns the parties with the router's
    /// server security.
    pub fn secure(config: &mut Config, dir: &Path) -> anyhow::Result<(Parties, ServerSecurity)> {
        let now = SystemTime::now();
        pki::init(dir, "Corridor demo", now)?;
        let issued = pki::issue_network(dir, config, &ServerNames::local(), now)?;
        let ca = dir.join(pki::CA_CERT_FILE);
        let files = |prefix: &Path| TlsFiles {
            ca: ca.clone(),
            cert: prefix.with_extension("pem"),
            key: prefix.with_extension("key"),
            crl: Some(dir.join(pki::CRL_FILE)),
        };
        let mut clients = HashMap::new();
        for party in &issued {
            let prefix = pki::party_prefix(dir, &party.identity.id);
            clients.insert(party.identity.id.clone(), ClientSecurity::mtls(&files(&prefix))?);
        }
        let server = ServerSecurity::mtls(&files(&pki::party_prefix(dir, pki::ROUTER_PARTY)))?;

        let random = ring::rand::SystemRandom::new();
        let mut signers = HashMap::new();
        for participant in &mut config.participants {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&random)
                .map_err(|_| anyhow::anyhow!("cannot generate a signing key"))?;
            let key_pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|_| anyhow::anyhow!("cannot read back a generated signing key"))?;
            participant.signing_key = Some(ParticipantKey::of(&key_pair));
            signers.insert(participant.id.to_string(), key_pair);
        }
        Ok((Parties { clients, signers, address: String::new() }, server))
    }

    /// Plain text for everyone, nothing signed.
    pub fn insecure() -> (Parties, ServerSecurity) {
        (
            Parties { clients: HashMap::new(), signers: HashMap::new(), address: String::new() },
            ServerSecurity::InsecureDev,
        )
    }

    pub fn is_secure(&self) -> bool {
        !self.clients.is_empty()
    }

    /// Where the router listens (`host:port`).
    pub fn set_address(&mut self, address: String) {
        self.address = address;
    }

    /// A new connection to the router as `party` (its own certificate; in plain text, anyone's).
    pub async fn connect(&self, party: &str) -> anyhow::Result<Channel> {
        let security = if self.is_secure() {
            self.clients.get(party).with_context(|| format!("the demo issued no certificate to `{party}`"))?
        } else {
            &ClientSecurity::InsecureDev
        };
        Ok(security.endpoint(&self.address)?.connect().await?)
    }

    /// Signs `instruction` as its participant now (schemas/SIGNATURES.md). Instructions that do
    /// not convert (the demo's malformed ones) or whose participant has no key stay unsigned.
    pub fn sign(&self, instruction: &mut wire::PaymentInstruction) {
        let Some(key_pair) = self.signers.get(&instruction.participant_id) else { return };
        let Ok(domain) = PaymentInstruction::try_from(instruction.clone()) else { return };
        let now = SystemTime::now();
        if let Ok(signature) = corridor_schemas::signature::sign(&domain, now, key_pair) {
            instruction.signed_at = Some(now.into());
            instruction.signature = signature.to_vec();
        }
    }
}
