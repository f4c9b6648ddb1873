//! The sandbox's sessions and their files (`/sessions/...`), always called as an [`Owner`].
//!
//! The sandbox gives a session to the caller that authenticated to it (this code-executor,
//! for every client it serves) *and* to the opaque `X-Switchboard-Owner` value of the request
//! that created it; every later request must carry the same value to reach it. The
//! code-executor sends, as that value, the caller it computes for tasks (see
//! `crate::task_methods`), so one of its clients never reaches another's session.

use reqwest::{Method, Url, header::HeaderValue};
use switchboard_protocol::sandbox::{
    ClosedSession, CreateSessionRequest, FileList, SessionFile, SessionInfo,
};

use super::{ClientError, READY_TIMEOUT, SandboxClient};
use crate::tasks::Caller;

/// The request header that names a session's owner to the sandbox.
pub const OWNER_HEADER: &str = "x-switchboard-owner";

/// Whose sessions a request may reach: the caller's JSON array (`["session","<id>"]`,
/// `["api_key","gateway","for","alice"]`), with every character outside printable ASCII
/// written as a JSON `\u` escape. Header values must be printable ASCII, and the escaped
/// text is still the same JSON, so no two callers share an owner.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner(String);

impl From<&Caller> for Owner {
    fn from(caller: &Caller) -> Self {
        let mut ascii = String::with_capacity(caller.0.len());
        for c in caller.0.chars() {
            if c.is_ascii() && !c.is_ascii_control() {
                ascii.push(c);
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    ascii.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
        Self(ascii)
    }
}

impl Owner {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The header value.
    pub(super) fn header(&self) -> HeaderValue {
        HeaderValue::from_str(&self.0).expect("an owner is printable ASCII by construction")
    }
}

/// A downloaded file: its bytes and the `Content-Type` the sandbox gave, if any.
pub struct Download {
    pub bytes: bytes::Bytes,
    pub content_type: Option<String>,
}

impl SandboxClient {
    /// `POST /sessions`: a new session on this sandbox.
    pub async fn create_session(
        &self,
        owner: &Owner,
        request: &CreateSessionRequest,
    ) -> Result<SessionInfo, ClientError> {
        let builder = self
            .request(Method::POST, &["sessions"], owner)?
            .json(request);
        self.send(builder, self.execute_timeout).await
    }

    /// `GET /sessions/{id}`: whether this sandbox holds the session (for `owner`). A quick
    /// question asked of every sandbox at once, so it has the probe's time limit.
    pub async fn session(&self, owner: &Owner, id: &str) -> Result<SessionInfo, ClientError> {
        let builder = self.request(Method::GET, &["sessions", id], owner)?;
        self.send(builder, READY_TIMEOUT).await
    }

    /// `DELETE /sessions/{id}`.
    pub async fn close_session(
        &self,
        owner: &Owner,
        id: &str,
    ) -> Result<ClosedSession, ClientError> {
        let builder = self.request(Method::DELETE, &["sessions", id], owner)?;
        self.send(builder, self.execute_timeout).await
    }

    /// `PUT /sessions/{id}/files/{name}` with the bytes as the body.
    pub async fn put_file(
        &self,
        owner: &Owner,
        id: &str,
        name: &str,
        content: Vec<u8>,
    ) -> Result<SessionFile, ClientError> {
        let builder = self
            .request(Method::PUT, &file_path(id, name), owner)?
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(content);
        self.send(builder, self.execute_timeout).await
    }

    /// `GET /sessions/{id}/files`.
    pub async fn list_files(&self, owner: &Owner, id: &str) -> Result<FileList, ClientError> {
        let builder = self.request(Method::GET, &["sessions", id, "files"], owner)?;
        self.send(builder, self.execute_timeout).await
    }

    /// `GET /sessions/{id}/files/{name}`: the raw bytes.
    pub async fn get_file(
        &self,
        owner: &Owner,
        id: &str,
        name: &str,
    ) -> Result<Download, ClientError> {
        let builder = self.request(Method::GET, &file_path(id, name), owner)?;
        let response = self.send_raw(builder, self.execute_timeout).await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = Self::body(response).await?;
        Ok(Download {
            bytes,
            content_type,
        })
    }

    /// A request to the path of `segments` under the sandbox's URL, each segment
    /// percent-encoded (a session id or file name cannot step out of its place), as `owner`.
    fn request(
        &self,
        method: Method,
        segments: &[&str],
        owner: &Owner,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        let url = segment_url(&self.base, segments).ok_or_else(|| ClientError::Unreachable {
            url: self.base.clone(),
            detail: "no URL can be built under it".into(),
        })?;
        Ok(self.to(method, url).header(OWNER_HEADER, owner.header()))
    }
}

/// `sessions/{id}/files/{name...}`: a file name's `/`-separated parts are path segments of
/// their own (the sandbox's route takes the rest of the path as the name).
fn file_path<'a>(id: &'a str, name: &'a str) -> Vec<&'a str> {
    ["sessions", id, "files"]
        .into_iter()
        .chain(name.split('/'))
        .collect()
}

/// `base` with `segments` appended, each percent-encoded; `None` for a URL that cannot be a
/// base (never one the configuration accepted).
fn segment_url(base: &str, segments: &[&str]) -> Option<Url> {
    let mut url = Url::parse(base).ok()?;
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(segments);
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_printable_ascii_and_keep_callers_apart() {
        let plain = Owner::from(&Caller(r#"["session","abc"]"#.into()));
        assert_eq!(plain.as_str(), r#"["session","abc"]"#);
        let accented = Owner::from(&Caller(r#"["jwt","x","for","zoë 😀"]"#.into()));
        assert_eq!(
            accented.as_str(),
            r#"["jwt","x","for","zo\u00eb \ud83d\ude00"]"#
        );
        assert_eq!(accented.header().as_bytes(), accented.as_str().as_bytes());
        let decoded: Vec<String> = serde_json::from_str(accented.as_str()).expect("still JSON");
        assert_eq!(decoded[3], "zoë 😀");
    }

    #[test]
    fn ids_and_names_stay_inside_their_segments() {
        let url = segment_url(
            "http://127.0.0.1:8001",
            &file_path("a/../b?", "dir/my file#1.csv"),
        )
        .expect("a base URL");
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8001/sessions/a%2F..%2Fb%3F/files/dir/my%20file%231.csv"
        );
        let under = segment_url("http://h:1/sandbox/", &["sessions"]).expect("a base URL");
        assert_eq!(under.as_str(), "http://h:1/sandbox/sessions");
    }
}
