//! mTLS building blocks: every party (participant, liquidity provider, ledger node, regulator,
//! officer, operator, router) authenticates with a certificate issued by the network's CA
//! (`corridor pki`, see [`crate::pki`]), and its identity is read from that certificate.
//!
//! **The identity scheme.** A Corridor certificate carries exactly one subjectAltName URI
//! `corridor://<role>/<id>`, plus `?jurisdiction=<XX>` (ISO 3166-1 alpha-2) for the roles that act
//! for one jurisdiction (regulator, officer, ledger node) and only for them. `<role>` is one of
//! [`Role::ALL`] in its snake-case name, `<id>` is 1 to 64 characters of `a-z A-Z 0-9 . - _`
//! starting with a letter or digit, so the URI needs no escaping. Example:
//! `corridor://regulator/hkma?jurisdiction=HK`. [`identity_from_certificate`] parses it.
//!
//! What is here: PEM loading, the server config that requires a client certificate chaining to
//! the CA and not revoked by its CRL ([`server_config`], or [`server_config_with_verifier`] with
//! a [`ReloadingClientVerifier`], which re-reads `crl.pem` when it changes so revocations take
//! effect without a restart), the client config ([`client_config`]), and [`peer_identity`] for
//! the server side of a finished handshake. The crypto provider is always rustls's `ring`
//! provider ([`crypto_provider`]), never aws-lc. ALPN is `h2` (gRPC).
//!
//! What is not here: serving gRPC over TLS, or authorising what an identity may do — the edge
//! decides that with the [`PartyIdentity`] it gets from here.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use corridor_schemas::Jurisdiction;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use x509_parser::extensions::GeneralName;

/// The scheme (with its `//`) of the subjectAltName URI that names a party.
pub const IDENTITY_URI_PREFIX: &str = "corridor://";
/// The ALPN protocol both sides offer: gRPC runs over HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// How often the router should call [`ReloadingClientVerifier::reload`] (what
/// [`ReloadingClientVerifier::spawn_reloader`] uses unless told otherwise).
pub const CRL_RELOAD_INTERVAL: Duration = Duration::from_secs(5);
/// Longest party id in a certificate.
pub const PARTY_ID_LENGTH_MAX: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("invalid PEM ({what}): {detail}")]
    Pem { what: &'static str, detail: String },
    #[error("no certificate in the PEM ({what})")]
    NoCertificate { what: &'static str },
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier refused: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("not an X.509 certificate: {0}")]
    Certificate(String),
    #[error("the certificate names no Corridor party (no `corridor://` subjectAltName URI)")]
    NoIdentity,
    #[error("the certificate names more than one Corridor party")]
    SeveralIdentities,
    #[error("invalid Corridor identity `{uri}`: {reason}")]
    InvalidIdentity { uri: String, reason: String },
    #[error("the peer presented no certificate")]
    NoPeerCertificate,
    #[error("no CRL in the PEM: the CA's crl.pem always holds one, so its absence is an error")]
    NoCrl,
}

/// What a party does in the network; the first path segment of its identity URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Role {
    /// A bank or wallet provider that submits payments.
    #[value(name = "participant")]
    Participant,
    /// A provider of FX liquidity, quoting rates and holding accounts on several ledgers.
    #[value(name = "liquidity_provider")]
    LiquidityProvider,
    /// A central bank's ledger (server for the ledger protocol, client of the coordinator API).
    #[value(name = "ledger_node")]
    LedgerNode,
    /// A jurisdiction's regulator, reading its compliance feed.
    #[value(name = "regulator")]
    Regulator,
    /// A compliance officer deciding held payments of one jurisdiction.
    #[value(name = "officer")]
    Officer,
    /// Someone who runs the network (administration, not payments).
    #[value(name = "operator")]
    Operator,
    /// The router itself (server of the payment API, client of the ledger nodes).
    #[value(name = "router")]
    Router,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Participant,
        Role::LiquidityProvider,
        Role::LedgerNode,
        Role::Regulator,
        Role::Officer,
        Role::Operator,
        Role::Router,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Participant => "participant",
            Role::LiquidityProvider => "liquidity_provider",
            Role::LedgerNode => "ledger_node",
            Role::Regulator => "regulator",
            Role::Officer => "officer",
            Role::Operator => "operator",
            Role::Router => "router",
        }
    }

    /// Whether the role acts for one jurisdiction, which its identity then names.
    pub fn has_jurisdiction(self) -> bool {
        matches!(self, Role::Regulator | Role::Officer | Role::LedgerNode)
    }

    /// Whether the role serves TLS (its certificate names DNS names or addresses and allows
    /// serverAuth). Servers are also clients of each other: the router calls ledger nodes, ledger
    /// nodes call the router's coordinator API.
    pub fn is_server(self) -> bool {
        matches!(self, Role::Router | Role::LedgerNode)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|role| role.as_str() == text).ok_or_else(|| format!("unknown role `{text}`"))
    }
}

/// Who is at the other end of a connection, as the network's CA certified it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartyIdentity {
    pub role: Role,
    pub id: String,
    /// Present exactly for the roles with [`Role::has_jurisdiction`].
    pub jurisdiction: Option<Jurisdiction>,
}

impl PartyIdentity {
    /// A checked identity: the id's alphabet and length, a jurisdiction exactly when the role has one.
    pub fn new(role: Role, id: impl Into<String>, jurisdiction: Option<Jurisdiction>) -> Result<Self, String> {
        let id = id.into();
        check_party_id(&id)?;
        match (role.has_jurisdiction(), &jurisdiction) {
            (true, None) => return Err(format!("a {role} identity needs a jurisdiction")),
            (false, Some(_)) => return Err(format!("a {role} identity has no jurisdiction")),
            _ => {}
        }
        Ok(PartyIdentity { role, id, jurisdiction })
    }

    /// The subjectAltName URI: `corridor://<role>/<id>[?jurisdiction=XX]`.
    pub fn uri(&self) -> String {
        match &self.jurisdiction {
            Some(jurisdiction) => format!("{IDENTITY_URI_PREFIX}{}/{}?jurisdiction={jurisdiction}", self.role, self.id),
            None => format!("{IDENTITY_URI_PREFIX}{}/{}", self.role, self.id),
        }
    }

    /// Parses [`PartyIdentity::uri`]'s format, strictly (nothing else may follow).
    pub fn from_uri(uri: &str) -> Result<Self, TlsError> {
        let invalid = |reason: String| TlsError::InvalidIdentity { uri: uri.chars().take(200).collect(), reason };
        let rest = uri.strip_prefix(IDENTITY_URI_PREFIX).ok_or_else(|| invalid("not a corridor:// URI".into()))?;
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        let (role, id) = path.split_once('/').ok_or_else(|| invalid("expected corridor://<role>/<id>".into()))?;
        let role = Role::from_str(role).map_err(invalid)?;
        let jurisdiction = match query {
            None => None,
            Some(query) => {
                let code = query
                    .strip_prefix("jurisdiction=")
                    .ok_or_else(|| invalid("the only query is `jurisdiction=XX`".into()))?;
                Some(Jurisdiction::new(code).map_err(|error| invalid(format!("jurisdiction: {error}")))?)
            }
        };
        PartyIdentity::new(role, id, jurisdiction).map_err(invalid)
    }
}

impl fmt::Display for PartyIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

/// A party id: 1 to 64 of `a-z A-Z 0-9 . - _`, starting with a letter or digit (URI-safe as is).
pub fn check_party_id(id: &str) -> Result<(), String> {
    let bytes = id.as_bytes();
    let Some(first) = bytes.first() else {
        return Err("the party id is empty".into());
    };
    if bytes.len() > PARTY_ID_LENGTH_MAX {
        return Err(format!("the party id is longer than {PARTY_ID_LENGTH_MAX} characters"));
    }
    let allowed = |byte: &u8| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_');
    if !first.is_ascii_alphanumeric() || !bytes.iter().all(allowed) {
        return Err(format!(
            "the party id `{}` may only contain letters, digits, '.', '-' and '_', starting with a letter or digit",
            id.chars().take(PARTY_ID_LENGTH_MAX).collect::<String>()
        ));
    }
    Ok(())
}

/// The Corridor identity a certificate (DER) names in its subjectAltName URI. Other SANs (DNS
/// names, addresses, other URIs) are ignored; two `corridor://` URIs are an error.
///
/// x509-parser reads the SANs: rustls-webpki validates chains but does not expose URI SANs.
pub fn identity_from_certificate(der: &[u8]) -> Result<PartyIdentity, TlsError> {
    let (_, certificate) =
        x509_parser::parse_x509_certificate(der).map_err(|error| TlsError::Certificate(error.to_string()))?;
    let names = certificate.subject_alternative_name().map_err(|error| TlsError::Certificate(error.to_string()))?;
    let mut found = None;
    for name in names.iter().flat_map(|extension| extension.value.general_names.iter()) {
        if let GeneralName::URI(uri) = name
            && uri.starts_with(IDENTITY_URI_PREFIX)
        {
            if found.is_some() {
                return Err(TlsError::SeveralIdentities);
            }
            found = Some(PartyIdentity::from_uri(uri)?);
        }
    }
    found.ok_or(TlsError::NoIdentity)
}

/// The identity of the peer of a connection whose handshake is done (its end-entity certificate).
/// Pass a `rustls::ServerConnection` (or `ClientConnection`): both deref to `CommonState`.
pub fn peer_identity(connection: &rustls::CommonState) -> Result<PartyIdentity, TlsError> {
    let certificate =
        connection.peer_certificates().and_then(|chain| chain.first()).ok_or(TlsError::NoPeerCertificate)?;
    identity_from_certificate(certificate)
}

/// rustls's `ring` provider: the only one Corridor uses (no aws-lc).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM text, in order.
pub fn load_certificates(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Pem { what, detail: error.to_string() })?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate { what });
    }
    Ok(certificates)
}

/// The first private key (PKCS#8, SEC1 or PKCS#1) in a PEM text.
pub fn load_private_key(pem: &[u8], what: &'static str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|error| TlsError::Pem { what, detail: error.to_string() })
}

/// Every CRL in a PEM text (none for an empty text).
pub fn load_crls(pem: &[u8]) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    CertificateRevocationListDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Pem { what: "CRL", detail: error.to_string() })
}

fn root_store(ca_pem: &[u8]) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in load_certificates(ca_pem, "CA certificate")? {
        roots.add(certificate)?;
    }
    Ok(Arc::new(roots))
}

/// A verifier that requires a client certificate chaining to the CA in `ca_pem` and not revoked
/// by the CRLs in `crl_pem`. At least one CRL is required: a missing or garbled file must not
/// silently turn revocation off. A CRL's expiry is not enforced: `corridor pki` re-signs the list
/// only when something is revoked.
pub fn client_verifier(ca_pem: &[u8], crl_pem: &[u8]) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let crls = load_crls(crl_pem)?;
    if crls.is_empty() {
        return Err(TlsError::NoCrl);
    }
    Ok(WebPkiClientVerifier::builder_with_provider(root_store(ca_pem)?, crypto_provider()).with_crls(crls).build()?)
}

/// A server config for `cert_pem` (leaf, then chain) and `key_pem` that requires client
/// certificates from the CA in `ca_pem`, honouring `crl_pem` as it is now. For a CRL that can
/// change under a running server use [`server_config_with_verifier`] with a
/// [`ReloadingClientVerifier`].
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    ca_pem: &[u8],
    crl_pem: &[u8],
) -> Result<rustls::ServerConfig, TlsError> {
    server_config_with_verifier(cert_pem, key_pem, client_verifier(ca_pem, crl_pem)?)
}

/// A server config (ring provider, TLS 1.3 and 1.2, ALPN h2) with the given client verifier.
pub fn server_config_with_verifier(
    cert_pem: &[u8],
    key_pem: &[u8],
    verifier: Arc<dyn ClientCertVerifier>,
) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            load_certificates(cert_pem, "server certificate")?,
            load_private_key(key_pem, "server key")?,
        )?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// A client config (ring provider, ALPN h2) presenting `cert_pem`/`key_pem` and trusting only
/// servers whose certificate chains to the CA in `ca_pem`.
pub fn client_config(cert_pem: &[u8], key_pem: &[u8], ca_pem: &[u8]) -> Result<rustls::ClientConfig, TlsError> {
    let mut config = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(ca_pem)?)
        .with_client_auth_cert(
            load_certificates(cert_pem, "client certificate")?,
            load_private_key(key_pem, "client key")?,
        )?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// The verifier in force and the CRL text it was built from.
struct LoadedVerifier {
    verifier: Arc<dyn ClientCertVerifier>,
    crl_pem: Vec<u8>,
}

/// A client-certificate verifier whose CRL can be replaced while servers use it: [`reload`]
/// re-reads the CRL file and, if its content changed, swaps in a verifier built from it. Every
/// handshake after the swap sees the new list; the `ServerConfig` holding this verifier stays the
/// same, so nothing restarts. A CRL that cannot be read or parsed leaves the last good one in
/// force (revocations already known keep holding).
///
/// Beyond the chain and the CRL it also refuses a certificate that names no valid Corridor
/// identity, so every accepted peer has a [`PartyIdentity`].
///
/// [`reload`]: ReloadingClientVerifier::reload
pub struct ReloadingClientVerifier {
    ca_pem: Vec<u8>,
    crl_path: PathBuf,
    /// The CA's subject; fixed, since only the CRL is reloaded (and the trait returns a borrow).
    root_hint_subjects: Vec<DistinguishedName>,
    current: ArcSwap<LoadedVerifier>,
}

impl fmt::Debug for ReloadingClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingClientVerifier").field("crl_path", &self.crl_path).finish_non_exhaustive()
    }
}

impl ReloadingClientVerifier {
    /// A verifier for the CA in `ca_pem` with the CRL now in `crl_path` (which must be readable).
    pub fn open(ca_pem: &[u8], crl_path: &Path) -> Result<Arc<Self>, TlsError> {
        let crl_pem = read_file(crl_path)?;
        let verifier = client_verifier(ca_pem, &crl_pem)?;
        let root_hint_subjects = verifier.root_hint_subjects().to_vec();
        Ok(Arc::new(ReloadingClientVerifier {
            ca_pem: ca_pem.to_vec(),
            crl_path: crl_path.to_path_buf(),
            root_hint_subjects,
            current: ArcSwap::from_pointee(LoadedVerifier { verifier, crl_pem }),
        }))
    }

    /// Re-reads the CRL file; `Ok(true)` if it changed and the new list is now in force. On an
    /// error the previous list stays in force.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let crl_pem = read_file(&self.crl_path)?;
        if crl_pem == self.current.load().crl_pem {
            return Ok(false);
        }
        let verifier = client_verifier(&self.ca_pem, &crl_pem)?;
        self.current.store(Arc::new(LoadedVerifier { verifier, crl_pem }));
        Ok(true)
    }

    /// Calls [`reload`](Self::reload) every `interval` until the verifier is dropped, logging
    /// changes and failures. Needs a tokio runtime.
    pub fn spawn_reloader(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(verifier) = weak.upgrade() else { return };
                match verifier.reload() {
                    Ok(true) => tracing::info!(crl = %verifier.crl_path.display(), "CRL reloaded"),
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%error, "CRL not reloaded; the previous one stays in force"),
                }
            }
        })
    }

    fn inner(&self) -> Arc<dyn ClientCertVerifier> {
        self.current.load().verifier.clone()
    }
}

impl ClientCertVerifier for ReloadingClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.root_hint_subjects
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner().verify_client_cert(end_entity, intermediates, now)?;
        if let Err(error) = identity_from_certificate(end_entity) {
            tracing::warn!(%error, "client certificate refused");
            return Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner().supported_verify_schemes()
    }
}

/// The bytes of a PEM (or any) file, or an error naming it.
pub fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    // Tests fail loudly on any unexpected error; that is what unwrap is for here.
    #![allow(clippy::unwrap_used)]

    use std::time::SystemTime;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    use super::*;
    use crate::pki::tests::{request, temp_directory};
    use crate::pki::{self, RevokeTarget};

    /// A CA directory with a router certificate and two participants' (bank-a, bank-b).
    struct Pki {
        dir: PathBuf,
    }

    impl Pki {
        fn new(name: &str) -> Pki {
            Pki::for_network(name, "Testnet")
        }

        fn for_network(name: &str, network_name: &str) -> Pki {
            let dir = temp_directory(name);
            pki::init(&dir, network_name, SystemTime::now()).unwrap();
            for (role, party) in
                [(Role::Router, "router-1"), (Role::Participant, "bank-a"), (Role::Participant, "bank-b")]
            {
                pki::issue(&request(&dir, role, party, None), SystemTime::now()).unwrap();
            }
            Pki { dir }
        }

        fn read(&self, file: &str) -> Vec<u8> {
            std::fs::read(self.dir.join(file)).unwrap()
        }

        /// A client config for one of the parties issued above, trusting this CA.
        fn client(&self, party_file: &str) -> rustls::ClientConfig {
            client_config(
                &self.read(&format!("{party_file}.pem")),
                &self.read(&format!("{party_file}.key")),
                &self.read(pki::CA_CERT_FILE),
            )
            .unwrap()
        }

        fn router_config(&self, verifier: Arc<dyn ClientCertVerifier>) -> rustls::ServerConfig {
            server_config_with_verifier(&self.read("router-router-1.pem"), &self.read("router-router-1.key"), verifier)
                .unwrap()
        }
    }

    impl Drop for Pki {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// One connection over loopback; what the server side saw: the peer's identity, or why the
    /// handshake failed.
    async fn handshake(
        server: Arc<rustls::ServerConfig>,
        client: rustls::ClientConfig,
    ) -> Result<PartyIdentity, String> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server_side = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut stream = TlsAcceptor::from(server).accept(stream).await.map_err(|error| error.to_string())?;
            let identity = peer_identity(stream.get_ref().1).map_err(|error| error.to_string())?;
            assert_eq!(stream.get_ref().1.alpn_protocol(), Some(ALPN_H2));
            stream.write_all(b"ok").await.map_err(|error| error.to_string())?;
            stream.shutdown().await.map_err(|error| error.to_string())?;
            Ok::<_, String>(identity)
        });
        let client_side = async move {
            let stream = TcpStream::connect(address).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut stream = TlsConnector::from(Arc::new(client)).connect(name, stream).await?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        };
        let client_result = client_side.await;
        let server_result = server_side.await.unwrap();
        // The two sides must agree: a refused client never reads the server's answer.
        match (&server_result, &client_result) {
            (Ok(_), Ok(answer)) => assert_eq!(answer, b"ok"),
            (Err(_), Ok(answer)) => assert!(answer.is_empty(), "a refused client read {answer:?}"),
            _ => {}
        }
        server_result
    }

    fn participant(id: &str) -> PartyIdentity {
        PartyIdentity::new(Role::Participant, id, None).unwrap()
    }

    #[tokio::test]
    async fn a_client_from_the_ca_is_admitted_and_identified() {
        let pki = Pki::new("tls-good");
        let server = Arc::new(
            server_config(
                &pki.read("router-router-1.pem"),
                &pki.read("router-router-1.key"),
                &pki.read(pki::CA_CERT_FILE),
                &pki.read(pki::CRL_FILE),
            )
            .unwrap(),
        );
        assert_eq!(handshake(server.clone(), pki.client("participant-bank-a")).await, Ok(participant("bank-a")));
        assert_eq!(handshake(server.clone(), pki.client("participant-bank-b")).await, Ok(participant("bank-b")));
        // A ledger node's certificate also serves as a client's (it calls the coordinator API).
        let ledger = pki::tests::request(&pki.dir, Role::LedgerNode, "e-hkd", Some("HK"));
        pki::issue(&ledger, SystemTime::now()).unwrap();
        let expected = PartyIdentity::new(Role::LedgerNode, "e-hkd", Some(Jurisdiction::new("HK").unwrap())).unwrap();
        assert_eq!(handshake(server, pki.client("ledger_node-e-hkd")).await, Ok(expected));
    }

    #[tokio::test]
    async fn a_client_without_a_certificate_is_refused() {
        let pki = Pki::new("tls-anonymous");
        let verifier =
            ReloadingClientVerifier::open(&pki.read(pki::CA_CERT_FILE), &pki.dir.join(pki::CRL_FILE)).unwrap();
        let server = Arc::new(pki.router_config(verifier));
        let anonymous = rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(root_store(&pki.read(pki::CA_CERT_FILE)).unwrap())
            .with_no_client_auth();
        let refused = handshake(server, anonymous).await.unwrap_err();
        assert!(refused.contains("certificate"), "{refused}");
    }

    #[tokio::test]
    async fn a_client_from_another_ca_is_refused() {
        let pki = Pki::new("tls-ours");
        let other = Pki::for_network("tls-theirs", "Othernet");
        let same_name = Pki::for_network("tls-same-name", "Testnet");
        let verifier =
            ReloadingClientVerifier::open(&pki.read(pki::CA_CERT_FILE), &pki.dir.join(pki::CRL_FILE)).unwrap();
        let server = Arc::new(pki.router_config(verifier));
        // Their bank-a trusts our router's CA, but its own certificate comes from their CA.
        let impostor = client_config(
            &other.read("participant-bank-a.pem"),
            &other.read("participant-bank-a.key"),
            &pki.read(pki::CA_CERT_FILE),
        )
        .unwrap();
        let refused = handshake(server.clone(), impostor).await.unwrap_err();
        assert!(refused.contains("UnknownIssuer"), "{refused}");
        // A CA that copies our CA's name does not get past the signature check.
        let lookalike = client_config(
            &same_name.read("participant-bank-a.pem"),
            &same_name.read("participant-bank-a.key"),
            &pki.read(pki::CA_CERT_FILE),
        )
        .unwrap();
        let refused = handshake(server, lookalike).await.unwrap_err();
        assert!(refused.contains("BadSignature"), "{refused}");
    }

    #[tokio::test]
    async fn a_revoked_client_is_refused_after_a_reload_without_restart() {
        let pki = Pki::new("tls-revoke");
        let verifier =
            ReloadingClientVerifier::open(&pki.read(pki::CA_CERT_FILE), &pki.dir.join(pki::CRL_FILE)).unwrap();
        let server = Arc::new(pki.router_config(verifier.clone()));
        assert_eq!(handshake(server.clone(), pki.client("participant-bank-a")).await, Ok(participant("bank-a")));
        assert!(!verifier.reload().unwrap(), "nothing changed yet");

        let revoked = pki::revoke(&pki.dir, &RevokeTarget::Party("bank-a".into()), SystemTime::now()).unwrap();
        assert_eq!(revoked.len(), 1);
        assert!(verifier.reload().unwrap());
        // The same server config, never rebuilt.
        let refused = handshake(server.clone(), pki.client("participant-bank-a")).await.unwrap_err();
        assert!(refused.to_lowercase().contains("revoked"), "{refused}");
        assert_eq!(handshake(server, pki.client("participant-bank-b")).await, Ok(participant("bank-b")));
    }

    #[tokio::test]
    async fn the_reloader_task_picks_up_a_new_crl_and_survives_a_broken_one() {
        let pki = Pki::new("tls-reloader");
        let crl_path = pki.dir.join(pki::CRL_FILE);
        let verifier = ReloadingClientVerifier::open(&pki.read(pki::CA_CERT_FILE), &crl_path).unwrap();
        let server = Arc::new(pki.router_config(verifier.clone()));
        let task = verifier.spawn_reloader(Duration::from_millis(20));

        let good_crl = pki.read(pki::CRL_FILE);
        std::fs::write(&crl_path, b"not a CRL").unwrap();
        assert!(matches!(verifier.reload(), Err(TlsError::NoCrl)));
        assert!(matches!(client_verifier(&pki.read(pki::CA_CERT_FILE), b""), Err(TlsError::NoCrl)));
        assert_eq!(handshake(server.clone(), pki.client("participant-bank-a")).await, Ok(participant("bank-a")));
        std::fs::write(&crl_path, good_crl).unwrap();

        pki::revoke(&pki.dir, &RevokeTarget::Party("bank-b".into()), SystemTime::now()).unwrap();
        // The task reloads every 20 ms; give it up to 5 s on a busy machine.
        let mut refused = false;
        for _ in 0..100 {
            if handshake(server.clone(), pki.client("participant-bank-b")).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(refused, "the reloader never put the revocation in force");
        assert_eq!(handshake(server, pki.client("participant-bank-a")).await, Ok(participant("bank-a")));
        task.abort();
    }

    #[test]
    fn identity_uris_round_trip_and_bad_ones_are_refused() {
        let regulator = PartyIdentity::new(Role::Regulator, "hkma", Some(Jurisdiction::new("HK").unwrap())).unwrap();
        assert_eq!(regulator.uri(), "corridor://regulator/hkma?jurisdiction=HK");
        for identity in [
            regulator,
            PartyIdentity::new(Role::LiquidityProvider, "lp.asia_1", None).unwrap(),
            PartyIdentity::new(Role::LedgerNode, "e-hkd", Some(Jurisdiction::new("HK").unwrap())).unwrap(),
        ] {
            assert_eq!(PartyIdentity::from_uri(&identity.uri()).unwrap(), identity);
        }
        for bad in [
            "https://participant/bank-a",
            "corridor://participant",
            "corridor://banker/bank-a",
            "corridor://participant/bank-a?jurisdiction=HK",
            "corridor://regulator/hkma",
            "corridor://regulator/hkma?jurisdiction=hk",
            "corridor://regulator/hkma?country=HK",
            "corridor://participant/bank/a",
            "corridor://participant/",
        ] {
            assert!(PartyIdentity::from_uri(bad).is_err(), "{bad} was accepted");
        }
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
    }

    #[test]
    fn a_certificate_without_a_corridor_uri_has_no_identity() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let plain = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().self_signed(&key).unwrap();
        assert!(matches!(identity_from_certificate(plain.der()), Err(TlsError::NoIdentity)));
        assert!(matches!(identity_from_certificate(b"garbage"), Err(TlsError::Certificate(_))));
    }
}
