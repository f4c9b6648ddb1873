//! Serving HTTPS with the service's own certificate, and client certificates (mutual TLS) as
//! identities: a certificate signed by the configured CA names its holder — the subject's
//! common name, else its first subject alternative name — and its organizational units are the
//! holder's groups. Unsigned, expired or foreign certificates fail the TLS handshake itself.
//!
//! Handshakes run on tasks of their own (bounded by [`HANDSHAKE_TIMEOUT`]), so a client that
//! stalls in one never holds up the accept loop.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use axum::{extract::connect_info::Connected, serve::IncomingStream};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

use crate::{
    Error,
    auth::{Identity, Method},
};

/// Longest a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const BACKLOG: usize = 128;

/// Validated TLS serving settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The service's certificate chain and its private key (PEM).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA certificates (PEM) that sign the client certificates accepted as identities.
    pub client_ca: Option<PathBuf>,
}

impl TlsSettings {
    /// The rustls server configuration. A client certificate is verified against `client_ca`
    /// when one is shown (a foreign, expired or unsigned one fails the handshake) but not
    /// required at the TLS layer: the probes stay reachable, and a request without any
    /// credential gets the authentication layer's 401.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, Error> {
        let chain = read_certificates("tls_cert (--tls-cert / SWITCHBOARD_TLS_CERT)", &self.cert)?;
        let key = read_key(&self.key)?;
        let builder = rustls::ServerConfig::builder();
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for certificate in
                    read_certificates("client_ca (--client-ca / SWITCHBOARD_CLIENT_CA)", path)?
                {
                    roots.add(certificate).map_err(|e| {
                        Error::Config(format!(
                            "client_ca (--client-ca / SWITCHBOARD_CLIENT_CA) {}: {e}",
                            path.display()
                        ))
                    })?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                    .allow_unauthenticated();
                builder.with_client_cert_verifier(verifier.build().map_err(|e| {
                    Error::Config(format!(
                        "client_ca (--client-ca / SWITCHBOARD_CLIENT_CA): {e}"
                    ))
                })?)
            }
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            Error::Config(format!(
                "tls_cert / tls_key (--tls-cert, --tls-key): the key does not fit the certificate, or is unusable: {e}"
            ))
        })?;
        // HTTP/1.1 only: the services' router is served by axum's HTTP/1 connection builder.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn read_certificates(
    setting: &str,
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, Error> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::Config(format!("{setting} {}: cannot read: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            Error::Config(format!(
                "{setting} {}: not PEM certificates: {e}",
                path.display()
            ))
        })?;
    if certificates.is_empty() {
        return Err(Error::Config(format!(
            "{setting} {}: no certificate in it",
            path.display()
        )));
    }
    Ok(certificates)
}

fn read_key(path: &Path) -> Result<rustls::pki_types::PrivateKeyDer<'static>, Error> {
    use rustls::pki_types::{PrivateKeyDer, pem::PemObject};
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        Error::Config(format!(
            "tls_key (--tls-key / SWITCHBOARD_TLS_KEY) {}: no usable private key: {e}",
            path.display()
        ))
    })
}

/// Who is at the other end of a connection: its address and, when it showed one, the
/// identity its client certificate names.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub certificate: Option<Identity>,
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A listener that hands axum TLS connections, handshaken off the accept loop.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, Peer)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (sender, ready) = mpsc::channel(BACKLOG);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (tcp, addr) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of descriptors and the like: wait rather than spin.
                        tracing::warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if sender.is_closed() {
                    return;
                }
                let _ = tcp.set_nodelay(true);
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let certificate = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|chain| chain.first())
                                .and_then(|leaf| identity_of(leaf.as_ref()));
                            let _ = sender.send((stream, Peer { addr, certificate })).await;
                        }
                        Ok(Err(error)) => {
                            tracing::warn!(target: "audit", source = %addr, %error, "TLS handshake refused");
                        }
                        Err(_) => tracing::debug!(source = %addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept task is gone (it only ends when this listener is dropped).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(Peer {
            addr: self.local,
            certificate: None,
        })
    }
}

/// The identity a verified client certificate names: the subject's common name, else its
/// first DNS, email or URI alternative name; the organizational units are its groups.
pub fn identity_of(der: &[u8]) -> Option<Identity> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = certificate.subject();
    let common_name = subject
        .iter_common_name()
        .find_map(|cn| cn.as_str().ok().map(str::to_owned));
    let alternative = || {
        let names = certificate.subject_alternative_name().ok()??;
        names.value.general_names.iter().find_map(|name| {
            use x509_parser::extensions::GeneralName;
            match name {
                GeneralName::DNSName(n) | GeneralName::RFC822Name(n) | GeneralName::URI(n) => {
                    Some((*n).to_owned())
                }
                _ => None,
            }
        })
    };
    let name = common_name.or_else(alternative)?;
    let groups = subject
        .iter_organizational_unit()
        .filter_map(|ou| ou.as_str().ok().map(str::to_owned))
        .collect();
    Some(Identity {
        subject: name,
        method: Method::Certificate,
        groups,
        scopes: Vec::new(),
        via: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(configure: impl FnOnce(&mut rcgen::CertificateParams)) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::new()).expect("params");
        configure(&mut params);
        params
            .self_signed(&key)
            .expect("certificate")
            .der()
            .to_vec()
    }

    #[test]
    fn a_certificate_names_its_holder_by_common_name_else_alternative_name() {
        let der = certificate(|p| {
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "alice");
            p.distinguished_name
                .push(rcgen::DnType::OrganizationalUnitName, "ops");
        });
        let who = identity_of(&der).expect("an identity");
        assert_eq!(
            (who.subject.as_str(), who.method),
            ("alice", Method::Certificate)
        );
        assert_eq!(who.groups, ["ops"]);
        let der = certificate(|p| {
            p.distinguished_name = rcgen::DistinguishedName::new();
            p.subject_alt_names = vec![rcgen::SanType::DnsName(
                "worker.example".try_into().expect("name"),
            )];
        });
        assert_eq!(
            identity_of(&der).expect("an identity").subject,
            "worker.example"
        );
        assert!(identity_of(b"not a certificate").is_none());
    }
}
