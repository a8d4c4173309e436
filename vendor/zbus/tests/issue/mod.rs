#[cfg(unix)]
mod issue_1003;
#[cfg(all(feature = "proxy", feature = "service"))]
mod issue_1015;
#[cfg(all(feature = "proxy", feature = "service"))]
mod issue_104;
#[cfg(feature = "proxy")]
mod issue_121;
mod issue_1478;
#[cfg(all(feature = "proxy", feature = "service"))]
mod issue_173;
#[cfg(all(feature = "proxy", feature = "object-manager"))]
mod issue_1916;
#[cfg(all(feature = "proxy", feature = "service"))]
mod issue_2076;
#[cfg(feature = "proxy")]
mod issue_260;
#[cfg(feature = "proxy")]
mod issue_466;
#[cfg(feature = "proxy")]
mod issue_68;
#[cfg(all(feature = "proxy", feature = "service"))]
mod issue_799;
#[cfg(feature = "proxy")]
mod issue_81;

// Issues specific to tokio runtime.
#[cfg(all(unix, feature = "tokio", feature = "p2p"))]
mod issue_279;
#[cfg(all(unix, feature = "tokio", feature = "proxy", feature = "service"))]
mod issue_310;
#[cfg(all(unix, feature = "tokio", feature = "proxy", feature = "service"))]
mod issue_356;

#[cfg(all(unix, feature = "p2p", feature = "proxy", feature = "service"))]
mod issue_813;
