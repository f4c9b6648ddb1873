//! The reference "everything" server (npm, installed by `fixtures/install.sh`) over Streamable
//! HTTP, as a child process on a free port.

use std::path::PathBuf;

use super::{INSTALL, PATIENCE};

pub fn everything_script() -> String {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let script = target.join(
        "gateway-fixtures/stdio-servers/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
    );
    assert!(script.exists(), "run `{INSTALL}` (scripts/test runs it)");
    script.to_string_lossy().into_owned()
}

/// The everything server over Streamable HTTP on a free port; killed when dropped.
pub struct EverythingHttp {
    pub port: u16,
    _child: tokio::process::Child,
}

impl EverythingHttp {
    pub fn mcp_url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    pub async fn start() -> Self {
        let port = any_port_number().await;
        let child = tokio::process::Command::new("node")
            .arg(everything_script())
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the everything server did not listen"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Self {
            port,
            _child: child,
        }
    }
}

pub async fn any_port_number() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}
