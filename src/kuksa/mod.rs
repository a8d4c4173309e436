//! The daemon's side of the KUKSA databroker (built with the `kuksa` feature): connecting with
//! the `[kuksa]` settings, the reconnect backoff, and reading the signals' metadata. The vehicle
//! signals (`crate::signals`) and the `kuksa` actuator backend (`crate::backend::kuksa`) each
//! keep a connection of their own, so that one failing does not take the other's state with
//! it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use driverprofiled_kuksa::connect::{self, Address, Bearer, Client};
use driverprofiled_kuksa::proto::{ListMetadataRequest, Metadata};

use crate::config::KuksaConfig;

pub use driverprofiled_kuksa::{proto, value};

/// The `buffer_size` of every subscription: the broker keeps this many responses for a slow
/// subscriber. Its default, 0, keeps only the latest, and since each response carries only
/// the entries that changed, a change of one signal followed at once by a change of another
/// would be lost (a position, a gear). The real broker allows up to 1000.
pub const SUBSCRIBE_BUFFER: u32 = 100;

/// Why the broker could not be reached, or did not answer in time.
#[derive(Debug, Clone, PartialEq)]
pub enum BrokerError {
    /// The `[kuksa]` settings cannot be used as they are: the address, the token file or the
    /// token in it. Retrying helps only once the file is put right.
    Settings(String),
    /// No connection could be made (the transport error, with its causes).
    Connect(String),
    /// The broker did not answer `what` within `[kuksa] connect_timeout_ms`.
    Timeout {
        address: String,
        what: String,
        limit: Duration,
    },
}

impl std::fmt::Display for BrokerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BrokerError::Settings(m) | BrokerError::Connect(m) => f.write_str(m),
            BrokerError::Timeout {
                address,
                what,
                limit,
            } => write!(
                f,
                "the broker at {address} did not answer {what} within {} ms",
                limit.as_millis()
            ),
        }
    }
}

impl std::error::Error for BrokerError {}

/// Connect to the broker `cfg` names, with its token file (read at every attempt: a token
/// renewed on disk is picked up at the next reconnect).
pub async fn connect(cfg: &KuksaConfig) -> Result<Client, BrokerError> {
    let address: Address = cfg.address.parse().map_err(BrokerError::Settings)?;
    let token = match &cfg.token_file {
        Some(path) => Some(connect::read_token(path).map_err(BrokerError::Settings)?),
        None => None,
    };
    let bearer = Bearer::new(token.as_deref()).map_err(BrokerError::Settings)?;
    let limit = Duration::from_millis(cfg.connect_timeout_ms);
    // The endpoint's own timeout covers opening the socket; this bounds the whole of it
    // (a Unix socket's connector, the HTTP/2 handshake) as well.
    within(
        cfg,
        "the connection",
        connect::connect(&address, bearer, limit),
    )
    .await?
    .map_err(BrokerError::Connect)
}

/// Reconnect delays: 500 ms, doubling up to `[kuksa] reconnect_max_s`.
///
/// A connection that worked resets them, but only once it stayed up [`Backoff::STABLE`]: a
/// broker that answers and then fails at once (crashing at each subscription, a proxy that
/// drops streams) would otherwise be retried every 500 ms forever. Call [`Backoff::up`] when
/// a session starts working (its first response) and [`Backoff::down`] when it ends;
/// [`Backoff::reset`] resets unconditionally.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
    /// When the current session started working.
    up_since: Option<Instant>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(500);
    /// How long a session must stay up for its end to start the delays from 500 ms again.
    pub const STABLE: Duration = Duration::from_secs(10);

    pub fn new(cfg: &KuksaConfig) -> Backoff {
        let max = Duration::from_millis(cfg.reconnect_max_ms).max(Self::FIRST);
        Backoff {
            next: Self::FIRST,
            max,
            up_since: None,
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

    /// A session works now (the broker answered).
    pub fn up(&mut self) {
        self.up_since = Some(Instant::now());
    }

    /// The session ended. Whether it had stayed up [`Backoff::STABLE`] (the delays start
    /// again from 500 ms then); `false` for a session that never came up or failed soon after
    /// (the delays keep growing: the broker is not well).
    pub fn down(&mut self) -> bool {
        self.down_after(self.up_since.map(|t| t.elapsed()))
    }

    fn down_after(&mut self, up_for: Option<Duration>) -> bool {
        self.up_since = None;
        let stable = up_for.is_some_and(|d| d >= Self::STABLE);
        if stable {
            self.reset();
        }
        stable
    }
}

/// Logs a repeated failure once: the first occurrence (and the first after a session that
/// worked, [`LogOnce::clear`]) at the level the caller chose, the same again at debug only.
#[derive(Debug, Default)]
pub struct LogOnce {
    last: Option<String>,
}

impl LogOnce {
    /// Whether `why` is new (log it loudly) or a repetition of the last one (debug).
    pub fn is_new(&mut self, why: &str) -> bool {
        if self.last.as_deref() == Some(why) {
            return false;
        }
        self.last = Some(why.to_string());
        true
    }

    /// Things went well: the next failure is news again.
    pub fn clear(&mut self) {
        self.last = None;
    }
}

/// `fut` (a call to the broker), failing with a message when it takes longer than `[kuksa]
/// connect_timeout_s`: a broker that keeps the connection (it answers HTTP/2 PINGs) but
/// never answers a call must not hold anything up forever.
pub async fn within<T>(
    cfg: &KuksaConfig,
    what: &str,
    fut: impl Future<Output = T>,
) -> Result<T, BrokerError> {
    let limit = Duration::from_millis(cfg.connect_timeout_ms);
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| BrokerError::Timeout {
            address: cfg.address.clone(),
            what: what.to_string(),
            limit,
        })
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

/// A broker status as a short message: its code and what it said, quoted (at most
/// [`crate::core::QUOTE_MAX`] characters, escaped: a broker's text goes into our logs and
/// D-Bus errors, and must neither flood them nor forge lines in them).
pub fn status_message(s: &tonic::Status) -> String {
    let msg = s.message().trim();
    if msg.is_empty() {
        format!("{:?}", s.code())
    } else {
        format!("{:?}: {}", s.code(), crate::core::quote(msg))
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

    #[test]
    fn backoff_resets_only_after_a_session_that_stayed_up() {
        let cfg = crate::config::builtin().unwrap().kuksa;
        let mut b = Backoff::new(&KuksaConfig {
            reconnect_max_ms: 4000,
            ..cfg
        });
        assert_eq!(b.next_delay(), Duration::from_millis(500));
        // Answered, then failed at once: no reset, the delays keep growing.
        b.up();
        assert!(!b.down());
        assert_eq!(b.next_delay(), Duration::from_millis(1000));
        assert!(!b.down_after(Some(Backoff::STABLE - Duration::from_millis(1))));
        assert!(!b.down_after(None), "never up");
        assert_eq!(b.next_delay(), Duration::from_millis(2000));
        // Up long enough: from 500 ms again.
        assert!(b.down_after(Some(Backoff::STABLE)));
        assert_eq!(b.next_delay(), Duration::from_millis(500));
    }

    #[test]
    fn a_repeated_failure_is_news_once() {
        let mut l = LogOnce::default();
        assert!(l.is_new("a"));
        assert!(!l.is_new("a"));
        assert!(l.is_new("b"));
        assert!(l.is_new("a"));
        l.clear();
        assert!(l.is_new("a"));
    }

    #[test]
    fn a_broker_message_is_quoted_short_and_escaped() {
        let long = format!("line one\nforged: line {}", "x".repeat(500));
        let m = status_message(&tonic::Status::unavailable(long));
        assert!(m.starts_with("Unavailable: \"line one\\nforged"), "{m}");
        assert!(!m.contains('\n'), "{m}");
        assert!(m.len() < 120, "{m}");
        assert_eq!(
            status_message(&tonic::Status::not_found("  ")),
            "NotFound".to_string()
        );
    }
}
