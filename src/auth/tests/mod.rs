//! In-crate tests of the auth layer that reach its internals (the JWT rules, the test vectors, the
//! no-panic mutations, the ES256 differential run); each file's doc says what it covers.

mod confusion;
mod differential;
mod es256_edges;
mod jwt_rules;
mod kit;
mod no_panic;
mod vectors;
