//! The daemon's side of the KUKSA databroker (built with the `kuksa` feature): connecting with
//! the `[kuksa]` settings, the reconnect backoff, and reading the signals' metadata. The vehicle
//! signals ([`signals`]) and the `kuksa` actuator backend (`crate::backend::kuksa`) each keep a
//! connection of their own, so that one failing does not take the other's state with it.

pub mod signals;

use std::collections::BTreeMap;
use std::time::Duration;

use driverprofiled_kuksa::connect::{self, Address, Bearer, Client};
use driverprofiled_kuksa::proto::{ListMetadataRequest, Metadata};

use crate::config::KuksaConfig;

pub use driverprofiled_kuksa::{proto, value};

/// The `buffer_size` of every subscription: the broker keeps this many responses for a slow
/// subscriber. Its default, 0, keeps only the latest, and since each response carries only
/// the entries that changed, a change of one signal followed at once by a change of another
/// would be lost (a position, a gear). The real broker allows up to 1000.
pub const SUBSCRIBE_BUFFER: u32 = 100;

/// Connect to the broker `cfg` names, with its token file (read at every attempt: a token
/// renewed on disk is picked up at the next reconnect).
pub async fn connect(cfg: &KuksaConfig) -> Result<Client, String> {
    let address: Address = cfg.address.parse()?;
    let token = match &cfg.token_file {
        Some(path) => Some(connect::read_token(path)?),
        None => None,
    };
    let bearer = Bearer::new(token.as_deref())?;
    connect::connect(
        &address,
        bearer,
        Duration::from_millis(cfg.connect_timeout_ms),
    )
    .await
}

/// Reconnect delays: 500 ms, doubling up to `[kuksa] reconnect_max_s`; [`Backoff::reset`]
/// after a connection that worked.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(500);

    pub fn new(cfg: &KuksaConfig) -> Backoff {
        let max = Duration::from_millis(cfg.reconnect_max_ms).max(Self::FIRST);
        Backoff {
            next: Self::FIRST,
            max,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// The metadata of each of `paths` (one `ListMetadata` per path: the broker takes a signal's
/// path as its root). A path the broker does not know is missing from the map; any other
/// failure is the broker's status.
pub async fn metadata(
    client: &mut Client,
    paths: &[&str],
) -> Result<BTreeMap<String, Metadata>, tonic::Status> {
    let mut out = BTreeMap::new();
    for &path in paths {
        let req = ListMetadataRequest {
            root: path.to_string(),
            filter: String::new(),
        };
        match client.list_metadata(req).await {
            Ok(resp) => {
                for m in resp.into_inner().metadata {
                    if m.path == path {
                        out.insert(m.path.clone(), m);
                    }
                }
            }
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return Err(s),
        }
    }
    Ok(out)
}

/// A broker status as a short message: its code and what it said.
pub fn status_message(s: &tonic::Status) -> String {
    let msg = s.message().trim();
    let msg: String = msg.chars().take(200).collect();
    if msg.is_empty() {
        format!("{:?}", s.code())
    } else {
        format!("{:?}: {msg}", s.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_max_and_resets() {
        let cfg = crate::config::builtin().unwrap().kuksa;
        let mut b = Backoff::new(&KuksaConfig {
            reconnect_max_ms: 3000,
            ..cfg
        });
        let d: Vec<u64> = (0..5).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(d, [500, 1000, 2000, 3000, 3000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(500));
    }
}
