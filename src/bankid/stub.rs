//! Placeholder: the stub is being written.
