//! (filled by its area's work)
