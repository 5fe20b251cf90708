//! The SS 12000 v2.1 source: the parsed entities, a client, a mock server and a generator.
//!
//! `types` is the contract with the plan; `parse` turns JSON into it; `client` reads a
//! register over HTTP; `mock` and `generate` stand in for a register in the demo, the
//! tests and the benchmark.

pub mod client;
pub mod generate;
pub mod mock;
pub mod parse;
pub mod types;
