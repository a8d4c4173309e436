//! The test broker over its gRPC API and as a program, one binary.

mod broker;
mod test_broker;
