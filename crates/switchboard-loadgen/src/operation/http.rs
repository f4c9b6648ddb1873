//! HTTP POST of a JSON body, one connection per worker.

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderValue};

use super::{Operation, check_expected, post};
use crate::{Error, args::HttpArgs};

/// One worker's client (its own connection pool, so its own keep-alive connection).
pub struct HttpPost {
    client: reqwest::Client,
    url: String,
    /// `Bytes` clones without copying the JSON.
    body: Bytes,
    expect: Option<String>,
}

/// Build `concurrency` clients; the body must be JSON.
pub fn build_all(args: &HttpArgs, concurrency: usize) -> Result<Vec<HttpPost>, Error> {
    serde_json::from_str::<serde_json::Value>(&args.body)
        .map_err(|e| Error::usage(format!("--body {}: expected JSON: {e}", args.body)))?;
    let body = Bytes::from(args.body.clone());
    (0..concurrency)
        .map(|_| {
            Ok(HttpPost {
                client: reqwest::Client::builder().tcp_nodelay(true).build()?,
                url: args.url.clone(),
                body: body.clone(),
                expect: args.load.expect.clone(),
            })
        })
        .collect()
}

impl Operation for HttpPost {
    async fn call(&mut self) -> Result<(), String> {
        let request = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(self.body.clone());
        let (_, body) = post(request).await?;
        check_expected(self.expect.as_deref(), &String::from_utf8_lossy(&body))
    }
}
