//! The admin UI's texts of its services pages.

pub static MESSAGES: &[(&str, &str, &str)] = &[];
