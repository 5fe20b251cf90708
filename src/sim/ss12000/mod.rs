//! A stand-in for a student register: an SS 12000 v2.1 server (`mock`) and the synthetic
//! municipality it serves (`generate`), for the demo, the tests and the benchmark. The
//! sync's client (`sync::ss12000::client`) reads it like any register.

pub mod generate;
pub mod mock;

/// The sync's client against the mock: paging, retries, auth, incremental reads. Here, not
/// in `sync/`, so the register-facing code never depends on the simulator.
#[cfg(test)]
mod client_tests;
