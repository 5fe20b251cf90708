//! The admin UI's texts of its passwords pages.

pub static MESSAGES: &[(&str, &str, &str)] = &[];
