//! BankID: a client of the RP API v6.0 (`client`), its wire types (`api`), the animated QR
//! code (`qr`) and the recommended user messages (`messages`). One client serves the stub
//! (`sim::bankid`, same API) in demo and tests and BankID itself in production. The login
//! flow that uses them is `authn::bankid`.

pub mod api;
pub mod client;
pub mod messages;
pub mod qr;

pub use client::{BankIdError, Client};
