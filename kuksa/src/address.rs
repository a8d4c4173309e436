//! A broker's address as the config writes it: `unix:/path`, `http://host:port` or
//! `host:port`. Built without gRPC, so that whatever checks a config (the daemon, or
//! `driverprofilectl check-config` built without the client) reads it alike.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use http::Uri;

/// Where the broker listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `http://host:port`.
    Tcp(String),
    /// The path of its Unix socket.
    Unix(PathBuf),
}

impl FromStr for Address {
    type Err = String;

    /// `unix:/path` (or `unix:///path`), `http://host:port`, or `host:port`. `https://` is
    /// refused: this build has no TLS (use the Unix socket, or TLS termination in front).
    fn from_str(s: &str) -> Result<Address, String> {
        let s = s.trim();
        if let Some(p) = s.strip_prefix("unix:") {
            let p = p.strip_prefix("//").unwrap_or(p);
            if !p.starts_with('/') {
                return Err(format!(
                    "a Unix socket address needs an absolute path: {s:?}"
                ));
            }
            return Ok(Address::Unix(PathBuf::from(p)));
        }
        if s.starts_with("https://") {
            return Err(
                "https is not supported by this build (no TLS); use http:// on a \
                        trusted link or the broker's Unix socket"
                    .into(),
            );
        }
        let uri = if s.starts_with("http://") {
            s.to_string()
        } else {
            format!("http://{s}")
        };
        let parsed: Uri = uri
            .parse()
            .map_err(|e| format!("not a broker address ({e}): {s:?}"))?;
        if parsed.host().is_none() || parsed.port_u16().is_none() {
            return Err(format!(
                "a TCP broker address needs a host and a port: {s:?}"
            ));
        }
        Ok(Address::Tcp(uri))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(uri) => f.write_str(uri),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}
