//! Nothing here: the system tests live in `tests/`.
