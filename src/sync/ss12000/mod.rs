//! The SS 12000 v2.1 source: the parsed entities, a client, a mock server and a generator.

pub mod types;
