// Every issue here is reproduced over a connection to a bus or a real socket, which needs
// one of the backends.
#![cfg(all(feature = "comms", any(feature = "default-rt", feature = "tokio")))]

mod issue;
