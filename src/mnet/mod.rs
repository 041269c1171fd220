//! MNET: envelopes, the server pipeline, the client, faults and the peer registry.

pub mod envelope;
pub mod client;
pub mod faults;
pub mod server;
pub mod services;
