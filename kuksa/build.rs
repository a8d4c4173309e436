//! Generates the kuksa.val.v2 client and server from the vendored protos (see proto/README.md)
//! with the system's `protoc` (Debian: protobuf-compiler + libprotobuf-dev). `PROTOC` names
//! another one. Without the `client` feature there is nothing to generate.

#[cfg(not(feature = "client"))]
fn main() {}

#[cfg(feature = "client")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(
            &[
                "proto/kuksa/val/v2/val.proto",
                "proto/kuksa/val/v2/types.proto",
            ],
            &["proto", "/usr/include"],
        )
        .map_err(|e| {
            format!(
                "cannot compile the kuksa.val.v2 protos: {e}\n\
                 (needs protoc and google/protobuf/timestamp.proto: on Debian, \
                 apt-get install protobuf-compiler libprotobuf-dev)"
            )
            .into()
        })
}
