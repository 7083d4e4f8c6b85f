//! Outbound HTTP, through `wasi:http`. The host sends a request only to the
//! hosts granted to this component (`allow_hosts` in `glassbox.toml`, or
//! `--allow-host`), traces it, and adds the `traceparent` header itself.
//!
//! ```no_run
//! # fn demo() -> Result<(), glassbox_sdk::Error> {
//! let response = glassbox_sdk::http::get("https://api.example.com/v1/forecast?city=Paris")?;
//! let forecast = response.text();
//! # Ok(()) }
//! ```

use crate::Error;
use std::io::Read;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};

/// A response, read in full.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text, with invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name` (case-insensitive), as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
    }
}

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The URL is not `http(s)://host[:port][/path]`.
    InvalidUrl(String),
    /// The host's policy does not let this component reach the URL's host.
    Denied(String),
    /// The request was sent, or tried, and failed.
    Failed(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::InvalidUrl(url) => write!(f, "`{url}` is not an http(s) URL"),
            HttpError::Denied(url) => write!(f, "the host denied the request to {url}"),
            HttpError::Failed(reason) => write!(f, "the request failed: {reason}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for Error {
    fn from(error: HttpError) -> Self {
        match error {
            HttpError::Denied(_) => Error::NotAllowed(error.to_string()),
            HttpError::InvalidUrl(_) => Error::InvalidArguments(error.to_string()),
            HttpError::Failed(_) => Error::ToolFailed(error.to_string()),
        }
    }
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, HttpError> {
    request("GET", url, &[], None)
}

/// Sends one request and reads the whole response.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, HttpError> {
    let invalid = || HttpError::InvalidUrl(url.to_owned());
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(invalid()),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    if authority.is_empty() {
        return Err(invalid());
    }

    let fields = Fields::new();
    for (name, value) in headers {
        fields
            .append(name, value.as_bytes())
            .map_err(|e| HttpError::Failed(format!("header `{name}`: {e:?}")))?;
    }
    let outgoing = OutgoingRequest::new(fields);
    let method = match method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_owned()),
    };
    let set = [
        outgoing.set_method(&method),
        outgoing.set_scheme(Some(&scheme)),
        outgoing.set_authority(Some(authority)),
        outgoing.set_path_with_query(Some(&path)),
    ];
    if set.iter().any(Result::is_err) {
        return Err(invalid());
    }
    let outgoing_body = outgoing
        .body()
        .map_err(|()| HttpError::Failed("no request body".into()))?;

    // Send first, then write the body: the host reads it as it is written.
    let pending = outgoing_handler::handle(outgoing, None).map_err(|code| failure(url, code))?;
    if let Some(body) = body {
        let stream = outgoing_body
            .write()
            .map_err(|()| HttpError::Failed("cannot write the request body".into()))?;
        for chunk in body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| HttpError::Failed(format!("writing the body: {e:?}")))?;
        }
    }
    OutgoingBody::finish(outgoing_body, None).map_err(|code| failure(url, code))?;

    let incoming = loop {
        match pending.get() {
            Some(result) => break result,
            None => pending.subscribe().block(),
        }
    };
    let incoming = incoming
        .map_err(|()| HttpError::Failed("the response was already taken".into()))?
        .map_err(|code| failure(url, code))?;
    let status = incoming.status();
    let headers = incoming.headers().entries();
    let incoming_body = incoming
        .consume()
        .map_err(|()| HttpError::Failed("no response body".into()))?;
    let mut body = Vec::new();
    {
        let mut stream = incoming_body
            .stream()
            .map_err(|()| HttpError::Failed("cannot read the response body".into()))?;
        stream
            .read_to_end(&mut body)
            .map_err(|e| HttpError::Failed(format!("reading the body: {e}")))?;
    }
    drop(IncomingBody::finish(incoming_body));
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn failure(url: &str, code: ErrorCode) -> HttpError {
    match code {
        ErrorCode::HttpRequestDenied => HttpError::Denied(url.to_owned()),
        other => HttpError::Failed(format!("{other:?}")),
    }
}
