//! The SS 12000 v2.1 source: the parsed entities, the parser and the client.
//!
//! `types` is the contract with the plan; `parse` turns JSON into it; `client` reads a
//! register over HTTP. The mock server and the generator that stand in for a register are
//! in `sim::ss12000`.

pub mod client;
pub mod parse;
pub mod types;
