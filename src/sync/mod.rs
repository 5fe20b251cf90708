//! The metakatalog sync: sources (the SS 12000 API), the plan against the directory, the
//! safety guard, the chunked apply and the run records.

pub mod ss12000;
pub mod plan;
pub mod run;
