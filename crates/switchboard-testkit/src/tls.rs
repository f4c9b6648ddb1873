//! HTTPS in front of any test server: a certificate authority made at test time and a
//! TLS-terminating front that forwards each connection's bytes to a plain-HTTP backend, as a
//! TLS-terminating load balancer would. The client under test sees a real rustls server with a
//! certificate for `127.0.0.1` and `localhost` signed by [`TestCa`], which it trusts only when
//! told to (the CA file); nothing in the backend changes.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// A certificate authority of the test's own; its PEM file is what a client is told to trust.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, "switchboard test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("CA certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).expect("write CA file");
        Self {
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
            dir,
        }
    }

    /// The CA certificate as a PEM file.
    pub fn pem_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A server configuration with a certificate for `127.0.0.1`, `::1` and `localhost`,
    /// offering HTTP/1.1 by ALPN.
    fn server_config(&self) -> rustls::ServerConfig {
        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])
        .expect("server params");
        let cert = params.signed_by(&key, &self.issuer).expect("server cert");
        let chain = vec![cert.der().clone(), self.cert.clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server TLS config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// A TLS front on an ephemeral loopback port, forwarding to a backend; stops when dropped.
pub struct TlsFront {
    pub addr: SocketAddr,
    backend: Arc<std::sync::OnceLock<SocketAddr>>,
    stop: CancellationToken,
}

impl TlsFront {
    /// Terminate TLS with a certificate of `ca` and forward to `backend` (plain TCP).
    pub async fn start(ca: &TestCa, backend: SocketAddr) -> Self {
        let front = Self::start_unconnected(ca).await;
        front.forward_to(backend);
        front
    }

    /// A front whose backend is named later with [`TlsFront::forward_to`] (for a backend that
    /// is started after the URL it is reached by must be known).
    pub async fn start_unconnected(ca: &TestCa) -> Self {
        let backend = Arc::new(std::sync::OnceLock::new());
        let target = backend.clone();
        let acceptor = TlsAcceptor::from(Arc::new(ca.server_config()));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => continue,
                    },
                    () = token.cancelled() => return,
                };
                let acceptor = acceptor.clone();
                let token = token.clone();
                let target = target.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends its handshake: nothing to do.
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let Some(backend) = target.get().copied() else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(backend).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut tls, &mut plain) => {}
                        () = token.cancelled() => {}
                    }
                });
            }
        });
        Self {
            addr,
            backend,
            stop,
        }
    }

    /// Forward to `backend` from now on (once: later calls are ignored).
    pub fn forward_to(&self, backend: SocketAddr) {
        self.handle().forward_to(backend);
    }

    /// A handle that names the backend later, from wherever the backend's address is known.
    pub fn handle(&self) -> Backend {
        Backend(self.backend.clone())
    }

    /// `https://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

/// Names a [`TlsFront`]'s backend.
#[derive(Clone)]
pub struct Backend(Arc<std::sync::OnceLock<SocketAddr>>);

impl Backend {
    /// Forward to `backend` from now on (once: later calls are ignored).
    pub fn forward_to(&self, backend: SocketAddr) {
        let _ = self.0.set(backend);
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
