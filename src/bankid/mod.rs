//! BankID: a client of the RP API v6.0 (`client`), its wire types (`api`), the animated QR
//! code (`qr`), the recommended user messages (`messages`) and a built-in stub that speaks
//! the same API (`stub`), so one client serves the stub in demo and tests and BankID itself
//! in production. The login flow that uses them is `authn::bankid`.

pub mod api;
pub mod client;
pub mod messages;
pub mod qr;
pub mod stub;

pub use client::{BankIdError, Client};
