//! The admin UI's texts of its people pages.

pub static MESSAGES: &[(&str, &str, &str)] = &[];
