//! The admin UI's texts of its policy pages.

pub static MESSAGES: &[(&str, &str, &str)] = &[];
