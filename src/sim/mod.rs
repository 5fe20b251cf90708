//! Simulators for the demo, the tests and the benchmark: stand-ins for the parties outside
//! Portvakt, speaking their wire protocols. Nothing here runs against a real register or a
//! real BankID, and nothing in the core depends on it.
//!
//! - `ss12000`: an SS 12000 v2.1 server (`mock`) and a deterministic synthetic
//!   municipality to serve (`generate`);
//! - `bankid`: a BankID stub that speaks the RP API v6.0 and plays the app on the phone.

pub mod bankid;
pub mod ss12000;
