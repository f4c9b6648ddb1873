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

    /// A client certificate for `name` signed by this CA: the PEM files of the certificate
    /// and of its private key.
    pub fn client_files(&self, name: &str) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("client key");
        let mut params = CertificateParams::new(Vec::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer).expect("client cert");
        let cert_file = self.dir.path().join(format!("{name}.crt.pem"));
        let key_file = self.dir.path().join(format!("{name}.key.pem"));
        std::fs::write(&cert_file, cert.pem()).expect("write client cert");
        std::fs::write(&key_file, key.serialize_pem()).expect("write client key");
        (cert_file, key_file)
    }

    /// A client certificate for `name` in organizational unit `unit` (a group), valid or
    /// already expired: the PEM files of the certificate and of its private key.
    pub fn client_files_with(
        &self,
        name: &str,
        unit: Option<&str>,
        expired: bool,
    ) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("client key");
        let mut params = CertificateParams::new(Vec::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, name);
        if let Some(unit) = unit {
            params
                .distinguished_name
                .push(DnType::OrganizationalUnitName, unit);
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).expect("client cert");
        let stem = format!("{name}-{}", if expired { "expired" } else { "valid" });
        let cert_file = self.dir.path().join(format!("{stem}.crt.pem"));
        let key_file = self.dir.path().join(format!("{stem}.key.pem"));
        std::fs::write(&cert_file, cert.pem()).expect("write client cert");
        std::fs::write(&key_file, key.serialize_pem()).expect("write client key");
        (cert_file, key_file)
    }

    /// A server certificate for `127.0.0.1`, `::1` and `localhost` signed by this CA: the PEM
    /// files of the chain and of its private key (for a service serving HTTPS).
    pub fn server_files(&self) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])
        .expect("server params");
        let cert = params.signed_by(&key, &self.issuer).expect("server cert");
        let cert_file = self.dir.path().join("server.crt.pem");
        let key_file = self.dir.path().join("server.key.pem");
        std::fs::write(&cert_file, cert.pem()).expect("write server cert");
        std::fs::write(&key_file, key.serialize_pem()).expect("write server key");
        (cert_file, key_file)
    }

    /// A server configuration with a certificate for `127.0.0.1`, `::1` and `localhost`,
    /// offering HTTP/1.1 by ALPN; requiring a client certificate of this CA when
    /// `client_auth`.
    fn server_config(&self, client_auth: bool) -> rustls::ServerConfig {
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
        let builder = rustls::ServerConfig::builder();
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.cert.clone()).expect("CA root");
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder
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

/// How a [`TlsFront`] behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrontOptions {
    /// Require a client certificate signed by the CA (mutual TLS).
    pub client_auth: bool,
}

/// Most bytes a front records of what clients sent.
const MAX_RECORDED: usize = 1 << 20;

/// A TLS front on an ephemeral loopback port, forwarding to a backend; stops when dropped.
pub struct TlsFront {
    pub addr: SocketAddr,
    backend: Arc<std::sync::OnceLock<SocketAddr>>,
    /// What clients sent, decrypted (the first MiB).
    received: Arc<std::sync::Mutex<Vec<u8>>>,
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
        Self::start_with(ca, FrontOptions::default()).await
    }

    /// A front with `options`, whose backend is named later with [`TlsFront::forward_to`].
    pub async fn start_with(ca: &TestCa, options: FrontOptions) -> Self {
        let backend = Arc::new(std::sync::OnceLock::new());
        let target = backend.clone();
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = received.clone();
        let acceptor = TlsAcceptor::from(Arc::new(ca.server_config(options.client_auth)));
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
                let record = record.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends its handshake: nothing to do.
                    let Ok(tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let Some(backend) = target.get().copied() else {
                        return;
                    };
                    let Ok(plain) = TcpStream::connect(backend).await else {
                        return;
                    };
                    tokio::select! {
                        () = forward(tls, plain, record) => {}
                        () = token.cancelled() => {}
                    }
                });
            }
        });
        Self {
            addr,
            backend,
            received,
            stop,
        }
    }

    /// What clients have sent through this front so far, decrypted, as text.
    pub fn received(&self) -> String {
        let bytes = self.received.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
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

/// Copy both ways until either side closes, recording what the client sends.
async fn forward(
    tls: tokio_rustls::server::TlsStream<TcpStream>,
    plain: TcpStream,
    record: Arc<std::sync::Mutex<Vec<u8>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut from_client, mut to_client) = tokio::io::split(tls);
    let (mut from_backend, mut to_backend) = plain.into_split();
    let upstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Ok(mut recorded) = record.lock()
                && recorded.len() < MAX_RECORDED
            {
                recorded.extend_from_slice(&buf[..n]);
            }
            if to_backend.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = to_backend.shutdown().await;
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut from_backend, &mut to_client).await;
        let _ = to_client.shutdown().await;
    };
    tokio::join!(upstream, downstream);
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
