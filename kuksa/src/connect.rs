//! Connecting to a broker: over TCP (`http://host:port`, or `host:port`) or over its Unix
//! socket (`unix:/run/kuksa/databroker.sock`), with an optional bearer token (a JWT, for brokers
//! with authorisation enabled) sent as `authorization: Bearer …` on every call.

use std::path::Path;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::proto::val_client::ValClient;

pub use crate::address::Address;

/// Adds `authorization: Bearer <token>` to every request when a token is set.
#[derive(Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    pub fn new(token: Option<&str>) -> Result<Bearer, String> {
        match token {
            None => Ok(Bearer(None)),
            Some(t) => format!("Bearer {}", t.trim())
                .parse()
                .map(|v| Bearer(Some(v)))
                .map_err(|_| "the token is not a valid header value (a JWT is ASCII)".into()),
        }
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// Read a token file (a JWT; surrounding whitespace dropped).
pub fn read_token(path: &Path) -> Result<String, String> {
    let t = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
    let t = t.trim();
    if t.is_empty() {
        return Err(format!("the token file {} is empty", path.display()));
    }
    Ok(t.to_string())
}

/// A `kuksa.val.v2` client.
pub type Client = ValClient<InterceptedService<Channel, Bearer>>;

/// HTTP/2 PINGs on an idle connection every this often...
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// ... and a connection whose PING is not answered within this is dead: its calls and streams
/// fail. Without this, a broker that vanishes without closing the connection (power loss, a
/// pulled cable, a frozen host) would leave a Subscribe stream waiting forever, and the client
/// would keep believing the last values. (The KUKSA databroker, hyper/h2, answers PINGs at any
/// rate; gRPC servers with a ping policy would need a longer interval.)
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(2);

fn endpoint(e: Endpoint, timeout: Duration) -> Endpoint {
    e.connect_timeout(timeout)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
}

/// Connect to the broker at `address` (failing after `timeout`), with `bearer` on every call.
/// The connection is made now: an unreachable broker is an error here, not at the first call.
/// A broker that stops answering is noticed within [`KEEPALIVE_INTERVAL`] +
/// [`KEEPALIVE_TIMEOUT`]: every call and stream on the connection fails then.
pub async fn connect(
    address: &Address,
    bearer: Bearer,
    timeout: Duration,
) -> Result<Client, String> {
    let channel = match address {
        Address::Tcp(uri) => endpoint(
            Endpoint::from_shared(uri.clone())
                .map_err(|e| format!("bad broker address {uri}: {e}"))?,
            timeout,
        )
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| {
            format!(
                "cannot connect to the broker at {address}: {}",
                source_chain(&e)
            )
        })?,
        Address::Unix(path) => {
            let path = path.clone();
            // The URI is not used for a Unix socket, but the endpoint needs one.
            endpoint(Endpoint::from_static("http://localhost"), timeout)
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(
                            tokio::net::UnixStream::connect(path).await?,
                        ))
                    }
                }))
                .await
                .map_err(|e| {
                    format!(
                        "cannot connect to the broker at {address}: {}",
                        source_chain(&e)
                    )
                })?
        }
    };
    Ok(ValClient::with_interceptor(channel, bearer))
}

/// An error with its causes, "a: b: c" (tonic's transport error alone says only "transport
/// error").
pub fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            "127.0.0.1:55555".parse(),
            Ok(Address::Tcp("http://127.0.0.1:55555".into()))
        );
        assert_eq!(
            "http://broker:55555".parse(),
            Ok(Address::Tcp("http://broker:55555".into()))
        );
        assert_eq!(
            "unix:/run/kuksa/databroker.sock".parse(),
            Ok(Address::Unix("/run/kuksa/databroker.sock".into()))
        );
        assert_eq!(
            "unix:///run/kuksa/databroker.sock".parse(),
            Ok(Address::Unix("/run/kuksa/databroker.sock".into()))
        );
        assert!("unix:relative.sock".parse::<Address>().is_err());
        assert!("https://broker:55555".parse::<Address>().is_err());
        assert!("broker".parse::<Address>().is_err());
    }
}
