//! No code: this crate exists for its `Cargo.toml`, which pins the features of the crates the
//! native build depends on (see the comment there).
