//! A client for the Eclipse KUKSA databroker's `kuksa.val.v2` gRPC API (COVESA VSS signals and
//! actuators), as driverprofiled uses it: the generated protocol types and stubs ([`proto`]),
//! connecting over TCP or a Unix socket with an optional bearer token ([`connect`]), and the
//! conversions between VSS typed values and the daemon's numbers ([`value`]).
//!
//! All of that is the `client` feature (on by default): it needs `protoc` to build. Without it
//! the crate is only [`address`], the broker address syntax a config is checked with.
//!
//! With the `broker` feature it also carries [`broker`], an in-repo test broker implementing the
//! subset of `kuksa.val.v2` the project uses, with the semantics the proto documents.

pub mod address;

#[cfg(feature = "client")]
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("kuksa.val.v2");
}

#[cfg(feature = "client")]
pub mod connect;
#[cfg(feature = "client")]
pub mod value;

#[cfg(feature = "broker")]
pub mod broker;
